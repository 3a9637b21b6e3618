from .language import chosen_language


def language(request):
    """The signed-in person's own language choice ("" when they follow their institution's), for the
    top bar's selector; a callable, so pages that do not show the selector do not query it."""
    user = getattr(request, "user", None)
    return {"chosen_language": (lambda: (chosen_language(user) or "") if user is not None else "")}
