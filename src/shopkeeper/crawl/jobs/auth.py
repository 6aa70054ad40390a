"""A running job's own token (`SHOPKEEPER_JOB_TOKEN` of a command spider): `Authorization:
Bearer sjt_...`, good for that job's own endpoints while that run lasts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer

from shopkeeper.core.errors import Unauthorized
from shopkeeper.crawl.context import Crawler
from shopkeeper.crawl.jobs import service
from shopkeeper.crawl.jobs.models import Job

JOB_SCOPE = "crawl:job"
"""Not a permission any key holds: the job's own run token (its endpoints only)."""
job_bearer = HTTPBearer(auto_error=False, scheme_name="JobToken", description="A job's run token")


async def running_job(
    job_id: uuid.UUID,
    request: Request,
    crawler: Crawler,
    # Declares the scheme in OpenAPI; the "scope" names what the token is good for.
    _scheme: Annotated[object, Security(job_bearer, scopes=[JOB_SCOPE])] = None,
) -> Job:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(service.TOKEN_PREFIX):
        raise Unauthorized("This endpoint takes the job's own token (SHOPKEEPER_JOB_TOKEN)")
    return await service.running_job_for_token(crawler.db, job_id=job_id, token=token)


RunningJob = Annotated[Job, Depends(running_job)]
