"""Checks that no locked dependency needs a newer Rust than the workspace declares.

Reads `cargo metadata --format-version 1 --locked` on standard input: every package in the lock
file (all platforms' included) with a `rust-version` must declare one at most the workspace's,
which is read from the workspace members (they inherit one value). A dependency without a
declared `rust-version` is listed but does not fail the check: nothing can be compared.
Usage: cargo metadata --format-version 1 --locked | python3 .ci/rust-version.py
"""
import json
import sys


def version(text):
    return tuple(int(part) for part in text.split("."))


metadata = json.load(sys.stdin)
members = set(metadata["workspace_members"])
declared = {p["rust_version"] for p in metadata["packages"] if p["id"] in members and p.get("rust_version")}
if len(declared) != 1:
    sys.exit(f"the workspace members declare rust-version {sorted(declared)}, expected one value")
workspace = declared.pop()
too_new, undeclared, highest = [], [], ("0", "none")
for package in metadata["packages"]:
    if package["id"] in members:
        continue
    needed = package.get("rust_version")
    name = f"{package['name']} {package['version']}"
    if needed is None:
        undeclared.append(name)
    elif version(needed) > version(workspace):
        too_new.append(f"{name} needs Rust {needed}")
    elif version(needed) > version(highest[0]):
        highest = (needed, name)
print(f"workspace rust-version {workspace}; highest a dependency declares: {highest[0]} ({highest[1]})")
print(f"no rust-version declared (not checked): {', '.join(sorted(undeclared)) or 'none'}")
if too_new:
    sys.exit("dependencies that need a newer Rust than the workspace declares:\n  " + "\n  ".join(too_new))
