"""schemathesis hooks for maskdraw's OpenAPI document (tests/api/conformance.rs).

The document names one format a pattern cannot state: `gb11643`, an 18-character PRC resident
identity number (GB 11643-1999) whose birth date is a real date and whose last character is the
ISO 7064 MOD 11-2 check character. This teaches schemathesis to generate such numbers, the
same rule as src/domain/id_number.rs.
"""

from datetime import date, timedelta

import schemathesis
from hypothesis import strategies as st

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def with_check(first17: str) -> str:
    return first17 + CHECK[sum(w * int(c) for w, c in zip(WEIGHTS, first17)) % 11]


FIRST_DAY = date(1900, 1, 1)
DAYS = (date(2100, 12, 31) - FIRST_DAY).days

gb11643 = st.builds(
    lambda region, day, seq, lower: (lambda n: n[:-1] + "x" if lower and n.endswith("X") else n)(
        with_check(f"{region}{(FIRST_DAY + timedelta(days=day)):%Y%m%d}{seq:03d}")
    ),
    st.integers(100_000, 899_999),
    st.integers(0, DAYS),
    st.integers(0, 999),
    st.booleans(),
)

schemathesis.openapi.format("gb11643", gb11643)
