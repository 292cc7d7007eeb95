"""Receipts (biên lai thu phí, lệ phí) for money received, under Decree 123/2020 as amended by Decree 70/2025."""
