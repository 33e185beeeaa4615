#!/usr/bin/env bash
# Adds <codename>-backports (main) to apt's sources through the archive this machine already
# takes <codename> main from, keeping that entry's options (Signed-By, architectures): a
# mirrored or offline machine keeps working. Nothing is added when backports are configured.
# Usage: add-backports.sh [ROOT]   ROOT (default /) holds etc/os-release and etc/apt.
set -euo pipefail

root="${1:-}"
root="${root%/}"
codename="$(. "$root/etc/os-release" && echo "${VERSION_CODENAME:-}")"
if [ -z "$codename" ]; then
    echo "add-backports: $root/etc/os-release names no VERSION_CODENAME" >&2
    exit 1
fi

# One-line format: prints "backports" if the file has them, else the first "<codename> main"
# entry rewritten for backports.
one_line='
function has(list, word,   items, n, i) { n = split(list, items, /[ \t]+/); for (i = 1; i <= n; i++) if (items[i] == word) return 1; return 0 }
{
    sub(/#.*/, "")
    if ($1 != "deb") next
    rest = $0
    sub(/^[ \t]*deb[ \t]+/, "", rest)
    options = ""
    if (rest ~ /^\[/) {
        options = substr(rest, 1, index(rest, "]")) " "
        rest = substr(rest, index(rest, "]") + 1)
        sub(/^[ \t]+/, "", rest)
    }
    uri = rest; sub(/[ \t].*/, "", uri)
    rest = substr(rest, length(uri) + 1); sub(/^[ \t]+/, "", rest)
    suite = rest; sub(/[ \t].*/, "", suite)
    components = substr(rest, length(suite) + 1)
    if (suite == codename "-backports") backports = 1
    if (entry == "" && suite == codename && has(components, "main")) entry = "deb " options uri " " codename "-backports main"
}
END { if (backports) print "backports"; else if (entry != "") print entry }
'

# deb822 format: the same, a stanza at a time; the entry keeps the stanza'"'"'s other fields.
deb822='
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
function has(list, word,   items, n, i) { n = split(trim(list), items, /[ \t]+/); for (i = 1; i <= n; i++) if (items[i] == word) return 1; return 0 }
function derive(lines, n,   i, key, out, uri) {
    uri = trim(value["uris"]); sub(/[ \t].*/, "", uri)
    for (i = 1; i <= n; i++) {
        if (lines[i] ~ /^#/) continue
        if (lines[i] !~ /^[ \t]/) key = tolower(trim(substr(lines[i], 1, index(lines[i], ":") - 1)))
        if (key == "types" || key == "uris" || key == "suites" || key == "components") continue
        out = out lines[i] "\n"
    }
    return "Types: deb\nURIs: " uri "\nSuites: " codename "-backports\nComponents: main\n" out
}
BEGIN { RS = "" }
{
    split("", value); key = ""
    n = split($0, lines, "\n")
    for (i = 1; i <= n; i++) {
        if (lines[i] ~ /^#/) continue
        if (lines[i] ~ /^[ \t]/) { if (key != "") value[key] = value[key] " " lines[i]; continue }
        key = tolower(trim(substr(lines[i], 1, index(lines[i], ":") - 1)))
        value[key] = substr(lines[i], index(lines[i], ":") + 1)
    }
    if (tolower(trim(value["enabled"])) == "no" || !has(value["types"], "deb")) next
    if (has(value["suites"], codename "-backports")) backports = 1
    if (entry == "" && has(value["suites"], codename) && has(value["components"], "main")) entry = derive(lines, n)
}
END { if (backports) print "backports"; else if (entry != "") printf "%s", entry }
'

# In apt's reading order: sources.list, then sources.list.d by name.
sources=()
[ -f "$root/etc/apt/sources.list" ] && sources+=("$root/etc/apt/sources.list")
for file in "$root"/etc/apt/sources.list.d/*; do
    case "$file" in *.list | *.sources) sources+=("$file") ;; esac
done

entry="" format=""
for file in ${sources[@]+"${sources[@]}"}; do
    case "$file" in
        *.sources) found="$(awk -v codename="$codename" "$deb822" "$file")" kind=sources ;;
        *) found="$(awk -v codename="$codename" "$one_line" "$file")" kind=list ;;
    esac
    if [ "$found" = backports ]; then
        echo "add-backports: $codename-backports already configured in $file"
        exit 0
    fi
    if [ -z "$entry" ] && [ -n "$found" ]; then
        entry="$found" format="$kind"
    fi
done

if [ -z "$entry" ]; then
    echo "add-backports: no apt source serves '$codename main' under $root/etc/apt" \
        "(sources.list, sources.list.d/*.list, *.sources); add $codename-backports by hand" >&2
    exit 1
fi
target="$root/etc/apt/sources.list.d/vmotion-backports.$format"
mkdir -p "$(dirname "$target")"
printf '%s\n' "$entry" > "$target"
echo "add-backports: wrote $target"
