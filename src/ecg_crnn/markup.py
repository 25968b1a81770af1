"""Names from the data (classes, leads, families, devices, tasks) on their way into Markdown, HTML and scripts.

A class or lead name comes from a CSV or a WFDB header, that is from whoever made the copy of the dataset. In
Markdown it could add an image (a tracking beacon, and the report is then no longer self-contained) or a link; in
an Evidently report, whose data is JSON inside an inline <script>, `</script><script>...` would run when the page
is opened. So Markdown gets every punctuation character of a name backslash-escaped (CommonMark allows that for all
ASCII punctuation, and it then means the character itself), and scripts get only names made of characters that
can end nothing: PTB-XL's own names (`LAFB/LPFB`, `_AVB`, `NST_`, `V1`, `CS-12   E`) pass unchanged; any other
is replaced by a readable identifier, unique within its set, and listed in a legend.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

# ',' is the one punctuation mark no Markdown construct uses; keeping it leaves lists of names readable.
_MD_PUNCTUATION = re.compile("([" + re.escape(string.punctuation.replace(",", "")) + "])")
# Characters that cannot close a <script>, open an HTML comment, end a JSON string or start markup.
_PLAIN = re.compile(r"[A-Za-z0-9_ ./+-]{1,64}")
_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]+")


def md_escape(text) -> str:
    """`text` as literal Markdown inline text: no emphasis, link, image, HTML, autolink, code span or table
    cell boundary can come out of it, and a line break cannot start a new block."""
    flat = " ".join(str(text).split())
    return _MD_PUNCTUATION.sub(r"\\\1", flat)


def is_plain(name: str) -> bool:
    """A name that may appear as it is inside a script block or an HTML attribute."""
    return bool(_PLAIN.fullmatch(name))


def safe_names(names: Iterable[str]) -> dict[str, str]:
    """{name: the name a report may show}: plain names unchanged, others as `x_<letters and digits>_<k>`,
    distinct from each other and from every plain name of the set (k counts from 1 in the set's order)."""
    names = [str(n) for n in names]
    taken = {n for n in names if is_plain(n)}
    out: dict[str, str] = {}
    k = 0
    for name in names:
        if name in out:
            continue
        if is_plain(name):
            out[name] = name
            continue
        stem = _NOT_IDENTIFIER.sub("_", name).strip("_")[:32]
        while True:
            k += 1
            candidate = f"x_{stem}_{k}" if stem else f"x_{k}"
            if candidate not in taken:
                break
        taken.add(candidate)
        out[name] = candidate
    return out
