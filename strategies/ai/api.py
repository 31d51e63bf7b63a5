"""REST API for prompt templates (read by everyone, new versions by staff) and a run's AI records."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from strategies.ai.prompts import PLACEHOLDERS
from strategies.models import AgentMessage, AiRecord, PromptKind, PromptTemplate
from strategies.selectors import prompts_latest
from strategies.services import prompt_save, prompts_seed
from workflows.selectors import runs_visible


class PromptSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    placeholders = serializers.SerializerMethodField()

    class Meta:
        model = PromptTemplate
        fields = ["key", "version", "kind", "title", "system", "user", "message", "placeholders", "created_by"]
        fields += ["created_at"]
        read_only_fields = fields

    def get_placeholders(self, prompt: PromptTemplate) -> list[str]:
        return sorted(PLACEHOLDERS[prompt.kind])


class PromptSaveSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=PromptKind.choices, required=False, help_text="Needed for a new key")
    title = serializers.CharField(max_length=200)
    system = serializers.CharField(trim_whitespace=False)
    user = serializers.CharField(trim_whitespace=False)
    message = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class PromptListView(APIView):
    @extend_schema(responses=PromptSerializer(many=True), summary="The latest version of every prompt")
    def get(self, request):
        prompts_seed()
        return Response(PromptSerializer(prompts_latest(), many=True).data)


class PromptVersionsView(APIView):
    @extend_schema(
        operation_id="prompts_versions_list",
        responses=PromptSerializer(many=True),
        summary="Every version of one prompt, newest first",
    )
    def get(self, request, key: str):
        prompts_seed()
        versions = PromptTemplate.objects.filter(key=key).select_related("created_by").order_by("-version")
        if not versions:
            raise NotFound(f'There is no prompt "{key}"')
        return Response(PromptSerializer(versions, many=True).data)

    @extend_schema(
        request=PromptSaveSerializer,
        responses={201: PromptSerializer},
        summary="Save the next version of a prompt (staff only: prompts are shared by every workflow)",
    )
    def post(self, request, key: str):
        if not request.user.is_staff:
            raise PermissionDenied("Only staff can change prompts; they are shared by every user's workflows")
        data = PromptSaveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        current = PromptTemplate.objects.filter(key=key).order_by("version").first()
        kind = values.get("kind") or (current.kind if current else "")
        prompt = prompt_save(
            key=key,
            kind=kind,
            title=values["title"],
            system=values["system"],
            user=values["user"],
            message=values["message"],
            author=request.user,
        )
        return Response(PromptSerializer(prompt).data, status=status.HTTP_201_CREATED)


class AgentMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentMessage
        fields = ["seq", "agent", "kind", "content", "prompt_tokens", "completion_tokens"]
        read_only_fields = fields


class AiRecordSerializer(serializers.ModelSerializer):
    prompt = serializers.CharField(source="prompt.__str__", read_only=True, default=None)
    messages = AgentMessageSerializer(many=True, read_only=True)

    class Meta:
        model = AiRecord
        fields = [
            "id", "node_id", "symbol", "kind", "analyst", "prompt", "model", "images", "request", "raw_response",
            "result", "action", "error", "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "attempts",
            "created_at", "messages",
        ]  # fmt: skip
        read_only_fields = fields


class RunAiRecordsView(APIView):
    @extend_schema(responses=AiRecordSerializer(many=True), summary="What each AI step of a run asked and got")
    def get(self, request, pk: int):
        run = get_object_or_404(runs_visible(user=request.user), pk=pk)
        records = AiRecord.objects.filter(run=run).select_related("prompt").prefetch_related("messages")
        return Response(AiRecordSerializer(records, many=True).data)
