"""Who is asking: Bearer tokens map to accounts (RUNSTATE_API_TOKENS), each token with its own
rate limit (RUNSTATE_API_RATE_LIMIT); and the Runtime every route works with."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from worker.api.errors import ApiError
from worker.api.ratelimit import RateLimit
from worker.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="A token of RUNSTATE_API_TOKENS; it names the account.")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _account(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The token's account, once the token is known and within its rate limit."""
    tokens: dict[str, str] = request.app.state.tokens
    if credentials is None or credentials.credentials not in tokens:
        raise ApiError(401, "a valid Bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    token = credentials.credentials
    limit: RateLimit | None = request.app.state.rate_limit
    if limit is not None and (wait := limit.hit(token)) is not None:
        raise ApiError(
            429,
            f"this token made {limit.amount} requests in the last {limit.seconds} s, its limit; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    return tokens[token]


Account = Annotated[str, Depends(_account)]
Rt = Annotated[Runtime, Depends(_runtime)]
