"""Blobs in an S3-compatible object store (AWS S3, MinIO, Ceph, R2 ...): OBK_BLOB_URL=s3://BUCKET/PREFIX.

Configured the way the AWS tools are (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_REGION), read by Settings and passed in; anything left unset falls back to boto3's own
credential chain (instance profiles, ~/.aws). Writes are atomic because an object appears only
when its PUT (or multipart upload, used above 8 MiB) completes. Clients upload and download
through presigned URLs, so file bytes need not pass through the API processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openbotkit.errors import InvalidInput, ObkError, Problem, ProviderError
from openbotkit.ingestion.blobs import (
    BlobReader,
    IssuedStaging,
    SignedRequest,
    StoredBlob,
    attachment,
    check_key,
    digest_file,
    spool,
)
from openbotkit.settings import Settings

MISSING = ("404", "NoSuchKey", "NotFound")


class S3BlobStore(IssuedStaging):
    """Content under `s3://bucket/prefix/<key>`."""

    def __init__(self, client: Any, bucket: str, prefix: str, staging: Path) -> None:
        super().__init__()
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.staging = staging
        self.where = f"s3://{bucket}/{self.prefix}"

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> S3BlobStore:
        parts = urlsplit(url)
        if not parts.netloc:
            raise InvalidInput(
                f"OBK_BLOB_URL {url!r}: name a bucket (s3://BUCKET/PREFIX)",
                details=[Problem("/OBK_BLOB_URL", "format", "s3://BUCKET/PREFIX")],
            )
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise InvalidInput(
                "OBK_BLOB_URL=s3://... needs boto3: pip install 'openbotkit[s3]'",
                details=[Problem("/OBK_BLOB_URL", "dependency", "boto3 is not installed")],
            ) from None
        config = Config(
            signature_version="s3v4",
            # Most S3-compatible servers are addressed by path, not by bucket subdomain.
            s3={"addressing_style": "path" if settings.aws_endpoint_url else "auto"},
            retries={"mode": "standard", "max_attempts": 3},
        )
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.aws_endpoint_url,
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=settings.aws_secret_access_key,
            region_name=settings.aws_region or "us-east-1",
            config=config,
        )
        return cls(client, parts.netloc, parts.path, settings.home / "blob-staging")

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Foreign errors (network, permissions, no such bucket) become one ProviderError."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ObkError:
            raise
        except (Boto3Error, BotoCoreError, ClientError) as exc:
            raise ProviderError(f"{self.where}: {what}: {exc}") from exc

    def put_chunks(self, key: str, chunks: Iterable[bytes], max_bytes: int) -> StoredBlob:
        # Spooled first: the limit and the hash are known before anything reaches the bucket.
        tmp, info = spool(self.staging, chunks, max_bytes)
        try:
            self._upload(key, tmp)
        finally:
            tmp.unlink(missing_ok=True)
        return info

    def put_file(self, key: str, path: Path, *, move: bool) -> StoredBlob:
        info = digest_file(path)
        self._upload(key, path)
        if move and path.parent == self.staging:
            path.unlink(missing_ok=True)
        return info

    def _upload(self, key: str, path: Path) -> None:
        # upload_file switches to a multipart upload for large files; the object appears
        # only when the upload completes.
        with self._errors(f"upload {key}"):
            self.client.upload_file(str(path), self.bucket, self._key(key))

    def open(self, key: str) -> BlobReader | None:
        from botocore.exceptions import ClientError

        with self._errors(f"read {key}"):
            try:
                body: BlobReader = self.client.get_object(Bucket=self.bucket, Key=self._key(key))[
                    "Body"
                ]
            except ClientError as exc:
                if _code(exc) in MISSING:
                    return None
                raise
            return body

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        with self._errors(f"look up {key}"):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if _code(exc) in MISSING:
                    return None
                raise
            return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        with self._errors(f"delete {key}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def keys(self) -> Iterator[str]:
        with self._errors("list"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = str(item["Key"])[len(self.prefix) :]
                    if name and "/" not in name:
                        yield name

    def presign_put(self, key: str, size: int, ttl_s: int) -> SignedRequest | None:
        # Content-Length is signed, so the store itself refuses a body of any other size.
        with self._errors("sign an upload"):
            url = self.client.generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": self._key(key), "ContentLength": size},
                ExpiresIn=ttl_s,
                HttpMethod="PUT",
            )
        return SignedRequest(str(url), {"content-length": str(size)})

    def presign_get(self, key: str, name: str, content_type: str, ttl_s: int) -> str | None:
        with self._errors("sign a download"):
            url = self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": self._key(key),
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": attachment(name),
                },
                ExpiresIn=ttl_s,
            )
        return str(url)


def _code(exc: Any) -> str:
    error: Mapping[str, Any] = exc.response.get("Error", {})
    return str(error.get("Code", ""))
