"""Sample knowledge for a fresh development install, from the prototype's
`add_sample_knowledge`. Each entry is "Title: body"."""

import hashlib

SAMPLE_DOCUMENTS = (
    "Welcome: Welcome to our customer support! We're available 24/7 to help you.",
    "Password reset: To reset your password: 1. Click 'Forgot Password' 2. Enter your email "
    "3. Check your inbox 4. Follow the reset link.",
    "Refund policy: Full refunds are available within 30 days of purchase for unused items in original condition.",
    "Shipping information: Standard shipping takes 3-5 business days. Express shipping takes 1-2 business days.",
    "Account verification: Account verification requires a valid email address, phone number, "
    "and government-issued ID for certain features.",
    "Technical support hours: Technical support is available 24/7 via chat. "
    "Phone support is available Mon-Fri 9AM-6PM EST.",
    "Premium membership benefits: Premium members get free shipping, priority support, "
    "exclusive discounts and early access to sales.",
    "Payment methods: We accept credit cards (Visa, MasterCard, Amex), PayPal, Apple Pay and Google Pay.",
    "Order tracking: Use your order number on our tracking page or contact support for assistance.",
    "Data privacy: We encrypt all personal data and never share information with third parties without consent.",
    "International shipping: We ship to over 100 countries. Customs fees may apply.",
    "Product warranty: All products come with a 1-year manufacturer warranty. Extended warranties are available.",
    "Return process: Contact support for a return authorization number, then ship items back within 30 days.",
    "Live chat hours: Automated support is available 24/7. Human agents are available Mon-Fri 8AM-10PM EST.",
    "Account security: Enable two-factor authentication for enhanced security. Change your password every 90 days.",
)


def sample_documents() -> list[tuple[str, str]]:
    """(title, body) pairs."""
    return [tuple(entry.split(": ", 1)) for entry in SAMPLE_DOCUMENTS]  # type: ignore[misc]


def sample_ids() -> list[str]:
    """The sample documents' ids, as they are indexed (also by versions that
    did not mark them as samples)."""
    from supportdesk_documents.registry import document_id_for

    return [document_id_for(hashlib.sha256(body.encode()).hexdigest()) for _, body in sample_documents()]
