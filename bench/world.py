"""The benchmark's imaginary world, shared by the corpus and rule generators.

Both generators must agree on the partner companies (their domains, what they send and what
the rule for them looks for), so that the generated rules really match the generated mail.
Everything here is a pure function of a partner number: no randomness, no state.
"""

PARTNERS = 1000

STAFF_DOMAIN = "acme.example"
SUPPORT_ADDRESS = "support@acme.example"
SURVEY_SENDER = "opros@survey.example"
COURIER_SENDER = "noreply@courier.example"
WEBFORM_SENDER = "forms@webform.example"
SHOP_SENDER_DOMAIN = "shop.example"

_STEMS = [
    "stroy", "market", "logistic", "print", "office", "techno", "agro", "med", "auto", "food",
    "energo", "telecom", "mebel", "himprom", "textil", "neft", "bumaga", "santeh", "elektro",
    "optika",
]
_SUFFIXES = ["servis", "torg", "group", "plus", "pro", "line", "soft", "trade", "snab", "komplekt"]

# What a partner sends, by partner number modulo len(KINDS).
KINDS = ["invoice", "ticket", "report", "shop", "notice"]


def partner_domain(k: int) -> str:
    stem = _STEMS[k % len(_STEMS)]
    suffix = _SUFFIXES[(k // len(_STEMS)) % len(_SUFFIXES)]
    return f"{stem}{suffix}-{k:03d}.example"


def partner_kind(k: int) -> str:
    return KINDS[k % len(KINDS)]


def partner_sender(k: int) -> str:
    local = {
        "invoice": "billing",
        "ticket": "tracker",
        "report": "reports",
        "shop": "orders",
        "notice": "noreply",
    }[partner_kind(k)]
    return f"{local}@{partner_domain(k)}"


def ticket_project(k: int) -> str:
    """The issue-tracker project key a `ticket` partner puts in its subjects."""
    return f"PRJ{k}"


def report_code(k: int) -> str:
    """The code a `report` partner writes in the body of its stock reports."""
    return f"R-{k:04d}"


def shop_id(k: int) -> str:
    """The X-Shop-Id header value a `shop` partner's web shop sets."""
    return f"shop{k:04d}"
