"""Dead letters: list, show, and re-drive records no processor could handle."""

from bend.deadletters.service import (
    AlreadyRedriven, DeadLetterFilter, DeadLetterScope, Redriven, UnknownDeadLetter,
    get_dead_letter, list_dead_letters, redrive_dead_letter, redrive_dead_letters,
)

__all__ = [
    "AlreadyRedriven", "DeadLetterFilter", "DeadLetterScope", "Redriven", "UnknownDeadLetter",
    "get_dead_letter", "list_dead_letters", "redrive_dead_letter", "redrive_dead_letters",
]
