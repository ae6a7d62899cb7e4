#!/usr/bin/env bash
# Runs the Apache WSS4J 1.6 harness (Wss4jBench.java) with Debian's jars; arguments pass through:
#
#     benches/wss4j/run.sh KEY_PEM CERT_PEM UNSIGNED SIGNED SECONDS MODE [SAMPLE_OUT]
#     benches/wss4j/run.sh --check      (exit 0 when it can run; compiles if needed)
#
# Needs the Debian packages libwss4j-java and libxml-security-java (exit 3 if missing) and a JDK.
# Compiles into target/wss4j (or $WSS4J_BENCH_CACHE) when the source is newer than the classes.
# Extra JVM options may be given in $JAVA_OPTS.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
src="$here/Wss4jBench.java"
cache="${WSS4J_BENCH_CACHE:-$root/target/wss4j}"
jars=/usr/share/java

missing=()
for pkg in libwss4j-java libxml-security-java; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
# The classpath: WSS4J and Santuario, and what they load at run time (commons-logging for
# WSS4J, slf4j for Santuario, routed to java.util.logging, i.e. stderr).
cp_jars=(wss4j xmlsec commons-logging slf4j-api slf4j-jdk14)
for j in "${cp_jars[@]}"; do
    [ -f "$jars/$j.jar" ] || missing+=("$jars/$j.jar")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "benches/wss4j: missing ${missing[*]}" >&2
    echo "install with: sudo apt-get install -y libwss4j-java libxml-security-java" >&2
    exit 3
fi
for tool in java javac; do
    if ! command -v "$tool" >/dev/null; then
        echo "benches/wss4j: no $tool; install a JDK (apt-get install -y default-jdk-headless)" >&2
        exit 3
    fi
done

classpath=""
for j in "${cp_jars[@]}"; do
    classpath="$classpath${classpath:+:}$jars/$j.jar"
done

if [ ! -f "$cache/Wss4jBench.class" ] || [ "$src" -nt "$cache/Wss4jBench.class" ]; then
    mkdir -p "$cache"
    tmp="$(mktemp -d "$cache/.javac.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    javac -encoding UTF-8 -nowarn -d "$tmp" -cp "$classpath" "$src" >&2
    rm -f "$cache"/Wss4jBench*.class
    mv "$tmp"/*.class "$cache"/
    rm -rf "$tmp"
    trap - EXIT
fi

# `run.sh --check`: everything is in place (compiled), nothing run.
if [ "${1:-}" = "--check" ]; then
    exit 0
fi
# shellcheck disable=SC2086  # JAVA_OPTS is a list of options
exec java ${JAVA_OPTS:-} -cp "$cache:$classpath" Wss4jBench "$@"
