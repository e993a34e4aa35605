"""One typed hierarchy for every error paxon raises on purpose.

Where an error reaches a user, its class decides the answer: the CLI exit code
(docs/api.md) and the HTTP status. ``exit_code`` and ``http_status`` carry that
mapping so the CLI and the HTTP server do not each keep their own table.
"""

from __future__ import annotations

import re


class PaxonError(Exception):
    """Base of every error paxon raises on purpose."""

    code = "error"
    exit_code = 1
    http_status = 500


class NotLeader(PaxonError):
    """This replica cannot serve the request; ``leader_hint`` may know better.

    The request was not applied (HTTP 421).
    """

    code = "not_leader"
    exit_code = 3
    http_status = 421

    def __init__(
        self, leader_hint: int | None, message: str = "", *, leader_address: str | None = None
    ) -> None:
        self.leader_hint = leader_hint
        self.leader_address = leader_address
        hint = f"; try node {leader_hint}" if leader_hint is not None else ""
        if leader_address:
            hint += f" at {leader_address}"
        super().__init__(message or f"not the leader{hint}")


class Busy(PaxonError):
    """A bounded queue is full; retry later. Nothing was applied."""

    code = "busy"
    exit_code = 3
    http_status = 503


class SessionsFull(Busy):
    """The session table is full of live sessions: a new session was refused.

    Nothing was applied; retrying later (with any session) is safe. Live
    sessions are never evicted to make room, so exactly-once holds under load.
    """

    code = "sessions_full"


class SessionExpired(PaxonError):
    """The command names a session the cluster no longer knows (idle past its
    expiry, or never opened), past the session's first command.

    This attempt applied nothing; if an earlier attempt of the same command
    was sent, its outcome is unknown. A new session (a new client id) works.
    """

    code = "session_expired"
    exit_code = 3
    http_status = 503


class Unauthenticated(PaxonError):
    """Auth is enabled and the request has no valid token (none, forged, expired,
    or its user changed), or a login's user and password do not match.
    Nothing was applied (HTTP 401)."""

    code = "unauthenticated"
    exit_code = 1
    http_status = 401


class PermissionDenied(PaxonError):
    """The request's user has no permission for it; nothing was applied (HTTP 403)."""

    code = "permission_denied"
    exit_code = 1
    http_status = 403


class AuthNotEnabled(PaxonError):
    """A login was asked of a cluster whose auth is disabled (no token is needed)."""

    code = "auth_not_enabled"
    exit_code = 1
    http_status = 400


class ProtocolError(PaxonError):
    """A peer broke the protocol (a malformed or impossible message)."""

    code = "protocol"


class BadRequest(PaxonError):
    """The request itself is malformed or out of bounds; nothing was applied."""

    code = "bad_request"
    exit_code = 2
    http_status = 400


class ValueTooLarge(BadRequest):
    """A key, value or request body is over its configured limit."""

    code = "too_large"
    http_status = 413


class RevisionCompacted(BadRequest):
    """A read asked for a revision older than the history the store keeps, or
    a ``Compact`` for one already compacted.

    ``revision_compacted`` is the oldest revision kept, when known. Only the
    message crosses the wire (``ErrorResult``), so the store ends it with
    "the oldest kept is N" and this reads N back from there.
    """

    code = "compacted"
    exit_code = 1

    def __init__(self, message: str = "", *, revision_compacted: int | None = None) -> None:
        super().__init__(message)
        if revision_compacted is None:
            found = _OLDEST_KEPT.search(message)
            revision_compacted = int(found.group(1)) if found else None
        self.revision_compacted = revision_compacted


_OLDEST_KEPT = re.compile(r"the oldest kept is (\d{1,19})\b")


class LeaseNotFound(PaxonError):
    """The lease a request names does not exist: never granted, revoked, or
    expired (its keys are gone). Nothing was applied (HTTP 404)."""

    code = "lease_not_found"
    exit_code = 1
    http_status = 404


class LockNotAcquired(PaxonError):
    """A lock was not acquired within the caller's timeout; this waiter left
    the queue (its lease was revoked). Exit 1, as docs/api.md has ``paxon lock``."""

    code = "lock_not_acquired"
    exit_code = 1
    http_status = 409


class NotElected(PaxonError):
    """This candidate does not lead the election (any more); nothing was changed."""

    code = "not_elected"
    exit_code = 1
    http_status = 409


class NotSupported(BadRequest):
    """The operation exists in docs/api.md but is not built yet, or not by this state machine."""

    code = "not_supported"


class Unavailable(PaxonError):
    """No node of the cluster could be reached, or none could serve the request.

    For a write, the outcome is unknown: it may or may not have been applied.
    """

    code = "unavailable"
    exit_code = 3
    http_status = 503


class NoQuorum(Unavailable):
    """This node leads but has heard from no quorum within the serving bound
    (``election_timeout_min_s``, 0.3 s by default): it cannot get anything
    chosen or confirm a read, so it refuses at once instead of holding the
    request (HTTP 503, code ``no_quorum``).

    A request refused on arrival was not applied; one this leader already held
    and failed this way has an unknown outcome (its session makes a retry
    safe). Retry on another node: the majority side elects a new leader
    within about one election timeout.
    """

    code = "no_quorum"


class LeaderUnreachable(Unavailable):
    """This node follows a leader it has not heard from within the serving
    bound (``election_timeout_min_s``, 0.3 s by default), or knows no leader:
    it cannot forward the request, so it refuses at once instead of holding it
    (HTTP 503, code ``leader_unreachable``, with ``leader`` and
    ``leader_address`` when it knows one).

    Refused on arrival, the request was not applied; a forwarded request
    failed this way when the link went bad has an unknown outcome (its
    session makes a retry safe). Retry at ``leader_address`` or another node.
    """

    code = "leader_unreachable"

    def __init__(
        self,
        message: str = "",
        *,
        leader_hint: int | None = None,
        leader_address: str | None = None,
    ) -> None:
        self.leader_hint = leader_hint
        self.leader_address = leader_address
        super().__init__(message)


class Timeout(PaxonError):
    """No answer within the deadline. For a write, the outcome is unknown."""

    code = "timeout"
    exit_code = 3
    http_status = 504


ERROR_CLASSES: dict[str, type[PaxonError]] = {
    cls.code: cls
    for cls in (
        PaxonError,
        NotLeader,
        Busy,
        SessionsFull,
        SessionExpired,
        Unauthenticated,
        PermissionDenied,
        AuthNotEnabled,
        ProtocolError,
        BadRequest,
        ValueTooLarge,
        RevisionCompacted,
        LeaseNotFound,
        LockNotAcquired,
        NotElected,
        NotSupported,
        Unavailable,
        NoQuorum,
        LeaderUnreachable,
        Timeout,
    )
}
"""Error code (as sent on the wire and in HTTP JSON) to class, for the client side."""
