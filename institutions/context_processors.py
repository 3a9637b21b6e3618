def current_institution(request):
    """Expose the institution and membership resolved by the page mixin to every template."""
    return {
        "institution": getattr(request, "institution", None),
        "membership": getattr(request, "membership", None),
    }
