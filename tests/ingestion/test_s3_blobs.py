"""The S3 blob store against a real S3 endpoint on loopback (moto's server).

moto accepts presigned URLs without checking their signature or expiry, so the signatures are
recomputed here by hand (AWS Signature Version 4, query form) from the configured secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest

from openbotkit.backends import blob_store as open_blob_store
from openbotkit.errors import InvalidInput, LimitsReached, ProviderError
from openbotkit.ingestion.blobs import LocalBlobStore, read_all
from openbotkit.ingestion.s3_blobs import S3BlobStore
from openbotkit.settings import Settings
from tests.conftest import S3_CREDENTIALS, new_bucket


@pytest.fixture
def s3_settings(tmp_path: Path, s3_endpoint: str) -> Settings:
    return Settings(home=tmp_path / "home", **new_bucket(s3_endpoint))


@pytest.fixture
def store(s3_settings: Settings) -> S3BlobStore:
    opened = open_blob_store(s3_settings)
    assert isinstance(opened, S3BlobStore)
    return opened


def sigv4_query_signature(method: str, url: str, headers: dict[str, str], secret: str) -> str:
    """The X-Amz-Signature a correct presigned URL carries (AWS SigV4, query-string form)."""
    parts = urlsplit(url)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    enc = lambda s: quote(s, safe="-_.~")  # noqa: E731
    query = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params) if k != "X-Amz-Signature")
    q = dict(params)
    signed = q["X-Amz-SignedHeaders"].split(";")
    values = {"host": parts.netloc, **{k.lower(): v for k, v in headers.items()}}
    canonical_headers = "".join(f"{h}:{values[h].strip()}\n" for h in signed)
    canonical = "\n".join(
        [method, parts.path, query, canonical_headers, ";".join(signed), "UNSIGNED-PAYLOAD"]
    )
    _, date, region, service, terminal = q["X-Amz-Credential"].split("/")
    scope = f"{date}/{region}/{service}/{terminal}"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            q["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, terminal):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def check_presigned(url: str, method: str, headers: dict[str, str], ttl_s: int) -> dict[str, str]:
    q = query(url)
    assert q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert q["X-Amz-Credential"].startswith(f"{S3_CREDENTIALS['aws_access_key_id']}/")
    assert q["X-Amz-Credential"].endswith(f"/{S3_CREDENTIALS['aws_region']}/s3/aws4_request")
    assert q["X-Amz-Expires"] == str(ttl_s)
    signed_at = datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs(signed_at.timestamp() - time.time()) < 60
    secret = S3_CREDENTIALS["aws_secret_access_key"]
    assert q["X-Amz-Signature"] == sigv4_query_signature(method, url, headers, secret)
    assert q["X-Amz-Signature"] != sigv4_query_signature(method, url, headers, secret + "x")
    return q


def test_put_open_size_keys_delete(store: S3BlobStore) -> None:
    info = store.put_chunks("f1", [b"hello ", b"world"], 100)
    assert (info.size, info.sha256) == (11, hashlib.sha256(b"hello world").hexdigest())
    reader = store.open("f1")
    assert reader is not None and reader.read(5) == b"hello" and read_all(reader) == b" world"
    assert store.size("f1") == 11 and store.size("f2") is None and store.open("f2") is None
    assert list(store.keys()) == ["f1"]
    store.delete("f1")
    assert store.size("f1") is None and list(store.keys()) == []


def test_over_the_limit_stores_nothing(store: S3BlobStore) -> None:
    with pytest.raises(LimitsReached, match="10-byte limit"):
        store.put_chunks("f1", [b"12345", b"678901"], 10)
    assert list(store.keys()) == [] and list(store.staging.iterdir()) == []


def test_put_file_moves_a_staged_file_and_copies_others(store: S3BlobStore, tmp_path: Path) -> None:
    staged = store.staged_file()
    staged.write_bytes(b"staged")
    store.put_file("a", staged, move=True)
    assert not staged.exists()
    mine = tmp_path / "mine.txt"
    mine.write_bytes(b"mine")
    store.put_file("b", mine, move=True)  # not in the staging area: never taken away
    assert mine.exists()
    assert [read_all(store.open(k)) for k in ("a", "b")] == [b"staged", b"mine"]  # type: ignore[arg-type]


def test_large_bodies_go_up_in_parts(store: S3BlobStore) -> None:
    body = bytes(range(256)) * (9 * 4096)  # 9 MiB: above the 8 MiB multipart threshold
    store.put_chunks("big", [body[i : i + 65536] for i in range(0, len(body), 65536)], 1 << 30)
    head = store.client.head_object(Bucket=store.bucket, Key=store._key("big"))
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload of two parts
    assert read_all(store.open("big")) == body  # type: ignore[arg-type]


def test_presigned_put_is_signed_with_its_size_for_the_lifetime(store: S3BlobStore) -> None:
    signed = store.presign_put("up", 5, 900)
    assert signed is not None and signed.headers == {"content-length": "5"}
    q = check_presigned(signed.url, "PUT", signed.headers, 900)
    assert q["X-Amz-SignedHeaders"] == "content-length;host"  # the store refuses other sizes
    assert urlsplit(signed.url).path == f"/{store.bucket}/files/up"
    assert httpx.put(signed.url, content=b"12345").status_code == 200
    assert read_all(store.open("up")) == b"12345"  # type: ignore[arg-type]


def test_presigned_get_names_the_file_and_type(store: S3BlobStore) -> None:
    store.put_chunks("doc", [b"%PDF-1.4"], 100)
    url = store.presign_get("doc", "Bericht März.pdf", "application/pdf", 600)
    assert url is not None
    q = check_presigned(url, "GET", {}, 600)
    assert q["response-content-type"] == "application/pdf"
    got = httpx.get(url)
    assert got.content == b"%PDF-1.4"
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == (
        "attachment; filename*=utf-8''Bericht%20M%C3%A4rz.pdf"
    )


def test_a_missing_bucket_is_a_provider_error(s3_endpoint: str, tmp_path: Path) -> None:
    fields: dict[str, Any] = {**S3_CREDENTIALS, "aws_endpoint_url": s3_endpoint}
    store = open_blob_store(Settings(home=tmp_path, blob_url="s3://no-such-bucket/x", **fields))
    with pytest.raises(ProviderError, match="s3://no-such-bucket/x/: upload f"):
        store.put_chunks("f", [b"x"], 10)


def test_blob_urls_are_checked(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    default = open_blob_store(settings)
    assert isinstance(default, LocalBlobStore) and default.root == (tmp_path / "blobs").absolute()
    elsewhere = open_blob_store(settings, (tmp_path / "other dir").as_uri())
    assert isinstance(elsewhere, LocalBlobStore) and elsewhere.root == tmp_path / "other dir"
    with pytest.raises(
        InvalidInput, match="no blob store for 'gs' \\(OBK_BLOB_URL\\); registered: file, s3"
    ):
        open_blob_store(settings, "gs://bucket/x")
    with pytest.raises(InvalidInput, match="name a bucket"):
        open_blob_store(settings, "s3:///x")
    with pytest.raises(InvalidInput, match="absolute path"):
        open_blob_store(settings, "file://relative/x")


def test_settings_read_the_aws_variables() -> None:
    env = {
        "OBK_HOME": "/srv/obk",
        "OBK_BLOB_URL": "s3://b/p",
        "AWS_ENDPOINT_URL": "http://minio:9000",
        "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_REGION": "eu-central-1",
    }
    s = Settings.from_env(env)
    assert (s.resolved_blob_url, s.aws_endpoint_url, s.aws_region) == (
        "s3://b/p",
        "http://minio:9000",
        "eu-central-1",
    )
    assert (s.aws_access_key_id, s.aws_secret_access_key) == ("id", "secret")
    assert Settings.from_env({"OBK_HOME": "/srv/obk"}).resolved_blob_url == "file:///srv/obk/blobs"
