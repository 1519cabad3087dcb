"""Errors of the web UI: pages answer them as HTML (a login redirect, a 403 or 404 page)."""

from __future__ import annotations

from bend.core.errors import BendError

__all__ = ["BadForm", "CsrfRefused", "Forbidden", "LoginRequired", "NotFound", "UiError"]


class UiError(BendError):
    """An error a UI page shows as a page of its own, with `status`."""

    status = 400
    title = "Something is wrong with this request"


class LoginRequired(UiError):
    """No valid session: the page redirects to the sign-in form."""

    status = 401
    title = "Sign in"

    def __init__(self, next_path: str, reason: str | None = None) -> None:
        super().__init__(reason or "sign in to see this page")
        self.next_path = next_path
        self.reason = reason


class NotFound(UiError):
    """The page names something that does not exist (in the caller's project)."""

    status = 404
    title = "Not found"


class Forbidden(UiError):
    """The caller's role does not allow this action."""

    status = 403
    title = "Not allowed"

    def __init__(self, role: str, permission: str) -> None:
        super().__init__(f"your role ({role}) does not allow {permission}; ask an admin for a "
                         "key with a role that does")


class CsrfRefused(UiError):
    """A state-changing form came without this session's CSRF token."""

    status = 403
    title = "Form expired"

    def __init__(self) -> None:
        super().__init__("the form did not carry this session's CSRF token; reload the page "
                         "and submit it again")


class BadForm(UiError):
    """A form field holds something the action cannot use."""

    status = 422
    title = "Check the form"
