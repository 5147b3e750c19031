"""How figures are written in the report."""

NONE = "–"  # a figure that was not measured


def fmt(v, digits=0, unit=""):
    if v is None:
        return NONE
    if isinstance(v, float):
        return f"{v:,.{digits}f}{unit}"
    return f"{v:,}{unit}"


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return NONE
    return f"{a / b:.{digits}f}"


def share(x):
    return NONE if x is None else f"{x:.0%}"
