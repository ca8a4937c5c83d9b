"""Recordings (WAV) download, only with authorization, and only files under the recordings directory."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse

from callcenter_api.auth import PrincipalDep
from callcenter_api.deps import SessionDep
from callcenter_api.models import Recording
from callcenter_api.routes.conversations import may_see
from callcenter_api.schemas import ErrorOut

router = APIRouter(prefix="/recordings", tags=["recordings"])


@router.get("/{recording_id}", summary="Download a recording (audio/wav)",
            responses={status.HTTP_404_NOT_FOUND: {"model": ErrorOut, "description": "No such recording."},
                       200: {"content": {"audio/wav": {}}}})  # fmt: skip
def download(recording_id: str, session: SessionDep, request: Request, principal: PrincipalDep) -> FileResponse:
    recording = session.get(Recording, recording_id)
    if recording is None or not may_see(session, principal, recording.conversation_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"recording {recording_id} not found")
    path = Path(recording.path).resolve()
    root: Path | None = request.app.state.recordings_dir
    if root is not None and not path.is_relative_to(root.resolve()):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"recording {recording_id} is not available")
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"recording {recording_id}: file is gone")
    return FileResponse(path, media_type="audio/wav", filename=f"{recording.kind}-{recording_id}.wav")
