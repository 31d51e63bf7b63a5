"""`GET /api/queues/` (staff): broker, queue lengths, workers, their tasks and the steps waiting in a queue."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from workflows.queues import services as queue


class QueueOverviewView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: dict}, summary="Broker, queue lengths, workers and their tasks (staff)")
    def get(self, request):
        data = queue.queue_overview().as_dict()
        data["queued_steps"] = [
            {
                "step_run": s.id,
                "run": s.run_id,
                "node_id": s.node_id,
                "queue": s.queue,
                "queued_at": s.queued_at,
                "age_s": s.age_s,
                "stuck": s.stuck,
            }
            for s in queue.queued_steps()
        ]
        return Response(data)
