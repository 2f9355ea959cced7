"""Run the test suite one file per pytest process and print one combined summary line.

Some native libraries (the OpenVINO / ONNX Runtime thread pools) keep process-wide state; after hundreds of tests
in one process a later test crashed the whole run with SIGSEGV (not reproducible in any single file). One process
per file keeps every file's state to itself; a crashed file is reported as a failure with its name.

    python tests/run_isolated.py [pytest args...]
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

COUNTS = ("passed", "failed", "skipped", "error", "deselected", "xfailed", "xpassed")


def main(args: list[str]) -> int:
    files = sorted(Path(__file__).parent.glob("test_*.py"))
    total = dict.fromkeys(COUNTS, 0)
    bad = []
    for f in files:
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", *args, str(f)], capture_output=True, text=True)
        out = p.stdout + p.stderr
        tail = [ln for ln in out.strip().splitlines() if ln.strip()][-1:] or [""]
        for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)", tail[0]):
            total["error" if word.startswith("error") else word] += int(n)
        if p.returncode not in (0, 5):  # 5: every test of the file deselected
            bad.append(f"{f.name} (exit {p.returncode})")
            if not re.search(r"\d+ (failed|errors?)", tail[0]):
                total["failed"] += 1  # crashed before pytest could count
            print(out[-4000:], flush=True)
        print(f"{f.name}: {tail[0].strip('= ')}", flush=True)
    if bad:
        print("failed files: " + ", ".join(bad))
    parts = [f"{total['passed']} passed", f"{total['failed'] + total['error']} failed"]
    parts += [f"{total[k]} {k}" for k in ("skipped", "deselected") if total[k]]
    print(", ".join(parts))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
