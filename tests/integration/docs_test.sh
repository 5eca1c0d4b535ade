#!/usr/bin/env bash
# The manual pages say what the programs do: every command and option that
# the built programs' --help prints is documented in the pages, so that a
# new command or option without its page fails here.
# Usage: docs_test.sh LSICTL LSIFS   (MANDIR: the pages, default the repo's man/)
LSICTL=$1
LSIFS=$2
source "$(dirname "$0")/lib.sh"

MANDIR=${MANDIR:-$(cd "$(dirname "$0")/../../man" && pwd)}
LSICTL_8=$MANDIR/lsictl.8
LSIFS_8=$MANDIR/lsifs.8
MOUNT_8=$MANDIR/mount.lsifs.8
for page in "$LSICTL_8" "$LSIFS_8" "$MOUNT_8"; do
  [ -r "$page" ] || { echo "FAIL: no page $page" >&2; exit 1; }
done

# A page as plain text, one troff line a line: '\-' is '-', font changes
# (\fB, \fI, \fP, \fR) and quotes of .B/.BR arguments are gone.
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' -e 's/"//g' "$1"; }

# The lines of section .SH NAME (to the next .SH) of plain text on stdin.
sh_section() { awk -v name="$1" '/^\.SH /{on = ($0 == ".SH " name); next} on'; }

# The tags of the .TP/.TQ items of plain text on stdin (the line after
# each): where an option is documented, not merely mentioned.
item_tags() { awk 'tag {print} {tag = ($0 == ".TP" || $0 == ".TQ")}'; }

# The command a line names: its leading words of lower-case letters and
# dashes ("access show -e EXT" -> "access show", "config [set KEY]" -> "config").
command_of() {
  awk '{n = ""; for (i = 1; i <= NF && $i ~ /^[a-z][a-z-]*$/; i++) n = n (n == "" ? "" : " ") $i; print n}'
}

plain "$LSICTL_8" >"$WORK/lsictl.8.txt"
plain "$LSIFS_8" >"$WORK/lsifs.8.txt"
plain "$MOUNT_8" >"$WORK/mount.lsifs.8.txt"

# ---- lsictl: commands ------------------------------------------------------

# The "Commands:" list of lsictl --help: "  NAME ARGS   summary", or a long
# "  NAME ARGS" alone with the summary on the next line (indented further).
"$LSICTL" --help >"$WORK/lsictl.help" || { echo "FAIL: lsictl --help failed" >&2; exit 1; }
awk '/^Commands:/{on = 1; next} on && /^$/{exit} on && /^  [a-z]/' "$WORK/lsictl.help" |
  sed -E 's/^  //; s/  +.*//' | command_of >"$WORK/commands"
check "lsictl --help lists commands" test -s "$WORK/commands"

# The .SS headings of COMMANDS, by the command they name.
sh_section COMMANDS <"$WORK/lsictl.8.txt" | sed -n 's/^\.SS //p' | command_of >"$WORK/sections"
# The commands the SYNOPSIS names, each on a .B line ('.B key create').
sh_section SYNOPSIS <"$WORK/lsictl.8.txt" | sed -n 's/^\.B //p' | command_of >"$WORK/synopsis"

# The text of one command's section: from its .SS to the next .SS or .SH.
section_text() {
  sh_section COMMANDS <"$WORK/lsictl.8.txt" | awk -v cmd="$1" '
    function name(line,   n, i, w, k) {
      k = split(line, w, " "); n = ""
      for (i = 2; i <= k && w[i] ~ /^[a-z][a-z-]*$/; i++) n = n (n == "" ? "" : " ") w[i]
      return n
    }
    /^\.SS /{on = (name($0) == cmd); next}
    on'
}

has_section() {
  grep -qxF -- "$1" "$WORK/sections" && return 0
  echo "  lsictl.8: no '.SS $1 ...' in COMMANDS (sections: $(paste -sd, "$WORK/sections"))" >&2
  return 1
}
has_synopsis() {
  grep -qxF -- "$1" "$WORK/synopsis" && return 0
  echo "  lsictl.8: no '.B $1' line in SYNOPSIS" >&2
  return 1
}

# The long options 'lsictl COMMAND --help' lists in "Options:", but those
# of every command (--store, --json, --help, and a site's --region, --cert,
# --key, --ca, which OPTIONS documents): one a line in $WORK/options.
command_options() {
  # shellcheck disable=SC2086  # the command's words are separate arguments
  if ! "$LSICTL" $1 --help >"$WORK/command.help" ||
    ! grep -q '^Options:' "$WORK/command.help"; then
    echo "  lsictl $1 --help failed or lists no options" >&2
    return 1
  fi
  awk '/^Options:/{on = 1; next} on' "$WORK/command.help" | grep -oE -- '--[a-z][a-z-]*' |
    { grep -vxE -- '--(store|json|help|region|cert|key|ca)' || true; } | sort -u >"$WORK/options"
}
documents_options() {
  local cmd=$1 missing=() opt
  command_options "$cmd" || return 1
  section_text "$cmd" | item_tags >"$WORK/section"
  while read -r opt; do
    grep -qE -- "${opt}([^a-z-]|\$)" "$WORK/section" || missing+=("$opt")
  done <"$WORK/options"
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "  lsictl.8, section '$cmd': no item (.TP) for ${missing[*]}" \
    "(lsictl $cmd --help lists them)" >&2
  return 1
}

# Those options of every command, in OPTIONS, as 'lsictl --help' lists them.
global_options() {
  local missing=() opt
  sh_section OPTIONS <"$WORK/lsictl.8.txt" | item_tags >"$WORK/section"
  for opt in --region --cert --key --ca; do
    grep -qE -- "${opt}( |$)" "$WORK/lsictl.help" || missing+=("$opt (lsictl --help)")
    grep -qE -- "${opt}([^a-z-]|\$)" "$WORK/section" || missing+=("$opt (lsictl.8 OPTIONS)")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "  not documented: ${missing[*]}" >&2
  return 1
}
check "lsictl --help and lsictl.8 OPTIONS document a site's options" global_options

while read -r cmd; do
  check "lsictl.8 has a section for '$cmd'" has_section "$cmd"
  check "lsictl.8 SYNOPSIS names '$cmd'" has_synopsis "$cmd"
  check "lsictl.8 documents the options of '$cmd'" documents_options "$cmd"
done <"$WORK/commands"

# Sections for commands that do not exist (renamed or removed) mislead too.
no_stale_sections() {
  local stale
  stale=$(grep -vxF -f "$WORK/commands" "$WORK/sections" || true)
  [ -z "$stale" ] && return 0
  echo "  lsictl.8: sections for commands lsictl --help does not list: $(echo "$stale" | paste -sd,)" >&2
  return 1
}
check "lsictl.8 has no section for a command that is not there" no_stale_sections

# The heat map's colours, as 'access heatmap --help' names them.
heatmap_colours() {
  local missing=() colour
  section_text "access heatmap" >"$WORK/section"
  "$LSICTL" access heatmap --help | grep -oiE '#[0-9a-f]{6}' | sort -u >"$WORK/colours"
  if [ ! -s "$WORK/colours" ]; then
    echo "  lsictl access heatmap --help names no colour" >&2
    return 1
  fi
  while read -r colour; do
    grep -qiF -- "$colour" "$WORK/section" || missing+=("$colour")
  done <"$WORK/colours"
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "  lsictl.8, section 'access heatmap': colours ${missing[*]} not named" >&2
  return 1
}
check "lsictl.8 names the heat map's colours" heatmap_colours

# ---- lsifs: options --------------------------------------------------------

"$LSIFS" --help >"$WORK/lsifs.help" || { echo "FAIL: lsifs --help failed" >&2; exit 1; }
sh_section OPTIONS <"$WORK/lsifs.8.txt" | item_tags >"$WORK/lsifs.options"

# "       name=VALUE     what it does", or several "name=N, other=N," on
# one line: the names before the description column.
grep -E '^       [a-z]' "$WORK/lsifs.help" | sed -E 's/^ +//; s/  +.*//' |
  grep -oE '[a-z_]+=' | sort -u >"$WORK/o_options"
check "lsifs --help lists -o options" test -s "$WORK/o_options"
documents_o_options() {
  local missing=() opt
  while read -r opt; do
    grep -qE -- "(^|[^a-z_])${opt}" "$WORK/lsifs.options" || missing+=("${opt}VALUE")
  done <"$WORK/o_options"
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "  lsifs.8, OPTIONS: no item for -o ${missing[*]} (lsifs --help lists them)" >&2
  return 1
}
check "lsifs.8 documents every -o option" documents_o_options

# documents_long_options PROGRAM: every --option PROGRAM --help lists has an
# item in OPTIONS of PROGRAM.8 ($WORK/PROGRAM.help, $WORK/PROGRAM.options).
documents_long_options() {
  local program=$1 missing=() opt
  while read -r opt; do
    grep -qE -- "${opt}([^a-z-]|\$)" "$WORK/$program.options" || missing+=("$opt")
  done < <(grep -E '^ +-' "$WORK/$program.help" | grep -oE -- '--[a-z][a-z-]*' | sort -u)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "  $program.8, OPTIONS: no item for ${missing[*]} ($program --help lists them)" >&2
  return 1
}
check "lsifs.8 documents every long option" documents_long_options lsifs

# ---- lsid: options ---------------------------------------------------------

LSID=${LSID:-$(dirname "$LSIFS")/lsid}
LSID_8=$MANDIR/lsid.8
if [ -x "$LSID" ] && [ -r "$LSID_8" ]; then
  plain "$LSID_8" | sh_section OPTIONS | item_tags >"$WORK/lsid.options"
  "$LSID" --help >"$WORK/lsid.help" || { echo "FAIL: lsid --help failed" >&2; exit 1; }
  check "lsid.8 documents every long option" documents_long_options lsid
else
  check "lsid and lsid.8 are there" false
fi

# ---- mount.lsifs: exit codes -----------------------------------------------

names_exit_code() {
  sh_section "EXIT STATUS" <"$WORK/mount.lsifs.8.txt" | grep -qxE -- "\.B $1" && return 0
  echo "  mount.lsifs.8, EXIT STATUS: no entry for exit code $1" >&2
  return 1
}
for code in 1 32; do
  check "mount.lsifs.8 names exit code $code" names_exit_code "$code"
done

finish
