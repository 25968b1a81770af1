"""PhysioNet's SHA256SUMS.txt: parsing and writing, and which listed paths are safe to join."""

from __future__ import annotations

from ..errors import EcgCrnnError

SUMS_NAME = "SHA256SUMS.txt"


def parse_sums(text: str, origin: str = SUMS_NAME) -> dict[str, str]:
    """`<sha256>  <relative path>` per line -> {path: sha256}."""
    sums: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise EcgCrnnError(f"{origin}:{lineno}: not a '<sha256>  <path>' line: {line[:80]!r}")
        digest, path = parts
        path = path.strip().lstrip("*").removeprefix("./")
        if not is_plain_relative(path):
            raise EcgCrnnError(
                f"{origin}:{lineno}: entry {path!r} is not a plain relative path inside the dataset "
                "(absolute, or with '..', '.' or empty parts); refused, as it could be written outside "
                "the output directory"
            )
        sums[path] = digest.lower()
    if not sums:
        raise EcgCrnnError(f"{origin}: lists no files")
    return sums


def is_plain_relative(path: str) -> bool:
    """A path that can only name something below the directory it is joined to: relative, with no
    '..', '.' or empty parts, no backslash (a separator elsewhere) and no NUL."""
    if not path or path.startswith("/") or "\\" in path or "\0" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def format_sums(sums: dict[str, str]) -> str:
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(sums.items()))
