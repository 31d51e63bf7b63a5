"""REST API for uploaded bars: list your own, upload (multipart) a new or replacing file."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from brokers.marketdata.bar_sizes import BAR_CHOICES
from brokers.marketdata.uploads import bars_upload, uploads_visible
from brokers.models import UploadedBars


class UploadedBarsSerializer(serializers.ModelSerializer):
    class Meta:
        model = UploadedBars
        fields = [
            "id",
            "symbol",
            "bar",
            "rows",
            "first",
            "last",
            "original_filename",
            "uploaded_at",
            "splits",
            "warnings",
        ]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.BINARY)
class UploadFileField(serializers.FileField):
    """A file part of the multipart form: documented as binary, not as the URL a FileField answers
    with, so clients (and the API fuzz test) send a file."""


class UploadRequestSerializer(serializers.Serializer):
    symbol = serializers.CharField(max_length=32)
    bar = serializers.ChoiceField(choices=BAR_CHOICES)
    file = UploadFileField(allow_empty_file=True)


class UploadListView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=UploadedBarsSerializer(many=True), summary="Your uploaded bars")
    def get(self, request):
        return Response(UploadedBarsSerializer(uploads_visible(user=request.user), many=True).data)

    @extend_schema(
        request={"multipart/form-data": UploadRequestSerializer},
        responses={
            201: UploadedBarsSerializer,
            400: inline_serializer("UploadRejected", {"detail": serializers.CharField()}),
        },
        summary="Upload a CSV of bars (timestamp, open, high, low, close, volume); replaces the same symbol and bar",
        description=(
            "An optional split column (split_ratio, split, splits or stock_splits) holds the ratio on a split's "
            "date (2, 0.5, 4:1, 1:10): the bars before it are adjusted and `splits` lists each split applied. "
            "`warnings` lists overnight moves that look like an unadjusted split; they do not refuse the upload."
        ),
    )
    def post(self, request):
        serializer = UploadRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = bars_upload(
            owner=request.user,
            symbol=data["symbol"],
            bar=data["bar"],
            filename=data["file"].name,
            data=data["file"].read(),
        )
        return Response(UploadedBarsSerializer(upload).data, status=status.HTTP_201_CREATED)
