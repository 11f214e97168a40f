# Sourced by .ci/lambda-e2e and .ci/lambda-build: installs cargo-lambda, and for cross builds the
# zig it links with, both from PyPI (the versions the README gives), under target/ so that a
# second run reuses them, and puts them on PATH.
#
#   use_cargo_lambda TARGET_DIR [zig]
cargo_lambda_version=1.9.2
zig_version=0.13.0

# pip_install DIR PACKAGE==VERSION: one package alone (--no-deps: cargo-lambda's one dependency is
# ziglang, which only cross builds use), into DIR (--target: no venv, and no clash with a
# distribution-managed Python, PEP 668).
pip_install() {
    python3 -m pip --version >/dev/null 2>&1 || timeout 300 apt-get install -y -qq python3-pip
    rm -rf "$1"
    PIP_ROOT_USER_ACTION=ignore timeout 600 python3 -m pip install --quiet --no-deps \
        --disable-pip-version-check --target "$1" "$2"
}

use_cargo_lambda() {
    local tools="$1/lambda-e2e/cargo-lambda-$cargo_lambda_version" installed
    installed=$("$tools/bin/cargo-lambda" lambda --version 2>/dev/null || true)
    if [[ $installed != "cargo-lambda $cargo_lambda_version "* ]]; then
        pip_install "$tools" "cargo-lambda==$cargo_lambda_version"
    fi
    PATH="$tools/bin:$PATH"
    if [[ ${2:-} == zig ]]; then
        local zig="$1/lambda-e2e/ziglang-$zig_version"
        if [[ $("$zig/ziglang/zig" version 2>/dev/null || true) != "$zig_version" ]]; then
            pip_install "$zig" "ziglang==$zig_version"
        fi
        PATH="$zig/ziglang:$PATH"
    fi
    export PATH
}
