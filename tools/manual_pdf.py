"""A long text PDF for the ingestion benchmark: a support manual of
numbered chapters, each page a titled section of prose about shipping,
returns, payments and the like (sentences drawn from templates with a fixed
seed, so every run indexes the same text). Its facts are realistic in form,
not in content.

    python tools/manual_pdf.py out.pdf      # writes it, says its size
"""

import random
import sys
from pathlib import Path

from fpdf import FPDF

SUBJECTS = [
    "standard shipping", "express delivery", "the returns desk", "a gift card", "the loyalty programme",
    "a warranty claim", "an exchange", "the mobile app", "a store pickup", "an international order",
    "a price adjustment", "a damaged parcel", "a missing item", "the premium membership", "a subscription box",
    "a bulk order", "a pre-order", "the repair service", "a trade-in", "an invoice",
]  # fmt: skip
VERBS = ["takes", "usually needs", "is handled within", "can be arranged in", "is confirmed after", "requires"]
SPANS = [
    "one business day", "two to three business days", "five to seven days", "about a week", "48 hours",
    "ten working days", "up to 30 days", "the same afternoon", "one billing cycle", "two weeks",
]  # fmt: skip
CONDITIONS = [
    "if the receipt is attached", "when the item is unused", "unless the order was placed on sale",
    "provided the tracking number is valid", "for members in good standing", "once the payment has cleared",
    "as long as the original packaging is kept", "when the address is verified", "outside of public holidays",
]  # fmt: skip
ACTORS = ["Customers", "Members", "Agents", "Store staff", "Couriers", "Account holders", "Business buyers"]
ACTIONS = [
    "should contact support", "can request a refund", "may ask for a replacement", "must sign for the parcel",
    "can change the delivery slot", "receive an email confirmation", "are offered store credit",
    "can track the order online", "should keep the proof of purchase", "may cancel without a fee",
]  # fmt: skip
REASONS = [
    "because stock is allocated at dispatch", "since carriers scan every parcel twice",
    "so that fraud checks can finish", "because the warehouse closes at 6 p.m.",
    "as the bank settles payments overnight", "so the quality team can inspect the item",
    "since regional rules differ", "because the label expires after 14 days",
]  # fmt: skip
CHAPTERS = [
    "Shipping", "Returns", "Refunds", "Payments", "Accounts", "Warranty", "Membership", "Orders", "Delivery",
    "Exchanges", "Gift cards", "Repairs", "Stores", "Subscriptions", "Business accounts", "Privacy", "Security",
    "Promotions", "Pre-orders", "Trade-ins",
]  # fmt: skip
ASPECTS = [
    "Overview", "Eligibility", "Timelines", "Fees", "Exceptions", "How to request", "Tracking",
    "Documents needed", "Regional rules", "Common questions", "Escalation", "Limits",
]  # fmt: skip
PAGES_PER_CHAPTER = 10


def sentence(rng: random.Random) -> str:
    match rng.randrange(4):
        case 0:
            return (
                f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(SPANS)} {rng.choice(CONDITIONS)}."
            )
        case 1:
            return f"{rng.choice(ACTORS)} {rng.choice(ACTIONS)} {rng.choice(CONDITIONS)}, {rng.choice(REASONS)}."
        case 2:
            amount = rng.randrange(2, 99)
            return f"Orders over {amount} dollars qualify for {rng.choice(SUBJECTS)} at no cost, {rng.choice(REASONS)}."
        case _:
            subject, actor = rng.choice(SUBJECTS), rng.choice(ACTORS).lower()
            return f"In most cases {subject} {rng.choice(VERBS)} {rng.choice(SPANS)}; {actor} {rng.choice(ACTIONS)}."


def manual_pdf(pages: int = 200, seed: int = 6, paragraphs: int = 7) -> bytes:
    """`pages` pages, each a heading and `paragraphs` paragraphs of three to
    six sentences."""
    rng = random.Random(seed)
    pdf = FPDF()
    pdf.set_auto_page_break(False)  # one section a page: `pages` is exact
    pdf.set_margins(15, 15, 15)
    for page in range(pages):
        pdf.add_page()
        chapter = page // PAGES_PER_CHAPTER
        pdf.set_font("Helvetica", "B", 15)
        heading = f"{chapter + 1}. {CHAPTERS[chapter % len(CHAPTERS)]}: {rng.choice(ASPECTS)}"
        pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        pdf.set_font("Helvetica", "", 10)
        for _ in range(paragraphs):
            text = " ".join(sentence(rng) for _ in range(rng.randint(3, 6)))
            pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    return bytes(pdf.output())


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "manual.pdf")
    out.write_bytes(manual_pdf())
    print(f"{out}: {out.stat().st_size:,} bytes")
