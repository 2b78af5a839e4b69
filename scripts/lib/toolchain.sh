# Makes sure cargo is on PATH (rustup installs it under ~/.cargo/bin).
ensure_toolchain() {
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
    exit 1
  fi
  if ! command -v psql >/dev/null 2>&1; then
    echo "==> installing the PostgreSQL client (apt-get install postgresql-client)" >&2
    apt-get update -qq && apt-get install -y -qq postgresql-client >/dev/null
  fi
}
