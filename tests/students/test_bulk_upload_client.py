"""The chunked-upload client of docs/api.md ("Large files in chunks"), run as written against a
live server, interrupted after two chunks and resumed from the offset GET tells."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from institutions.api_keys import api_key_create
from students.models import ImportChannel, ImportUpload, ImportUploadSession, ImportUploadStatus

from .import_helpers import GOOD_CSV, database_state

pytestmark = pytest.mark.django_db(transaction=True)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
DOCUMENTED_API = 'API = "https://risk.example.edu/api/v1/institutions/northfield"'


def documented_client() -> str:
    section = DOCS.read_text(encoding="utf-8").split("## Large files in chunks", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_chunked_client_resumes_after_an_interruption(
        live_server, tenants, settings, tmp_path, monkeypatch):
    a, b = tenants
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_MAX_FILE_BYTES = 100  # the file is beyond the page's limit
    settings.IMPORT_UPLOAD_CHUNK_MAX_BYTES = 50  # 179 bytes: four chunks
    before = database_state(a.institution, b.institution)
    _key, raw = api_key_create(institution=a.institution, name="SIS", scopes=["imports:write"])
    monkeypatch.setenv("DROPOUT_API_KEY", raw)
    path = tmp_path / "sis-export.csv"
    path.write_bytes(GOOD_CSV.encode())
    code = documented_client()
    assert DOCUMENTED_API in code and len(code.strip().splitlines()) <= 32
    namespace: dict = {}
    exec(compile(code.replace(DOCUMENTED_API, f'API = "{live_server.url}/api/v1/institutions/alpha"'),
                 str(DOCS), "exec"), namespace)
    session = namespace["session"]
    patch = session.patch
    sent = []

    def patch_then_drop(*args, **kwargs):
        if len(sent) == 2:  # the network goes away before the third chunk
            raise requests.ConnectionError("connection reset")
        sent.append(kwargs["headers"]["Upload-Offset"])
        return patch(*args, **kwargs)

    try:
        url = namespace["start_upload"](str(path))
        session.patch = patch_then_drop
        with pytest.raises(requests.ConnectionError):
            namespace["send_file"](url, str(path))
        assert sent == ["0", "50"]
        assert session.get(url).json()["offset"] == 100
        session.patch = patch
        done = namespace["send_file"](url, str(path))
    finally:
        session.close()  # its kept-alive connection would hold a server thread open

    upload = ImportUpload.objects.for_institution(a.institution).get(pk=done["upload_id"])
    assert upload.channel == ImportChannel.API and upload.size == len(GOOD_CSV.encode())
    assert (tmp_path / "media" / upload.stored_name).read_bytes() == path.read_bytes()
    assert upload.status == ImportUploadStatus.UPLOADED and upload.preview["info"]["header"][0] == "student_id"
    assert done["import_url"].endswith(f"/i/alpha/imports/{upload.pk}/")
    assert ImportUploadSession.objects.for_institution(a.institution).get().upload_id == upload.pk
    assert database_state(a.institution, b.institution) == before  # imported only once a person confirms
