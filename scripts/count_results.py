#!/usr/bin/env python3
"""Counts test results for scripts/test.sh.

Usage: count_results.py BUILD_DIR...

For each build dir, reads meson-logs/testlog.junit.xml and counts its
<testcase> elements: one with a <failure> or <error> child failed, one with
<skipped> is left out, every other one passed. A cmocka binary is one
testcase there (meson runs it as a whole executable). As a cross-check,
meson-logs/testlog.json (one JSON object per test) is read too: a test that
meson marked FAIL, ERROR or TIMEOUT but that the junit file does not show as
failed counts as one more failure, so a crash is never lost.

Prints "PASSED FAILED" (two integers) on one line.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET

BAD = {"FAIL", "ERROR", "TIMEOUT", "UNEXPECTEDPASS", "INTERRUPT"}


def count_dir(build_dir):
    passed = failed = 0
    failed_names = set()
    junit = os.path.join(build_dir, "meson-logs", "testlog.junit.xml")
    if os.path.exists(junit):
        root = ET.parse(junit).getroot()
        for case in root.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
                failed_names.add(case.get("name"))
                failed_names.add(case.get("classname"))
            elif case.find("skipped") is not None:
                continue
            else:
                passed += 1
    log = os.path.join(build_dir, "meson-logs", "testlog.json")
    if os.path.exists(log):
        with open(log, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                name = rec.get("name", "")
                if rec.get("result") in BAD and not any(
                        n and (n == name or n.endswith("." + name))
                        for n in failed_names):
                    failed += 1
    return passed, failed


def main(argv):
    passed = failed = 0
    for d in argv[1:]:
        p, f = count_dir(d)
        passed += p
        failed += f
    print(passed, failed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
