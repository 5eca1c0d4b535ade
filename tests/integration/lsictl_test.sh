#!/usr/bin/env bash
# lsictl as a user runs it: help, store, keys, import of a real ext4 image,
# listings, and the error paths.
LSICTL=$1
source "$(dirname "$0")/lib.sh"

S=$WORK/store
check "main help teaches" bash -c "'$LSICTL' --help | grep -q 'Usage: lsictl'"
for c in init config "key create" "key list" import snapshots restore preassemble "lsi list" "lsi show" "lsi drop" gc stats assemblies "assemblies cancel" "ca init" "cert issue" "cert revoke" "cert list"; do
  check "help of '$c'" bash -c "'$LSICTL' $c --help | grep -q 'Example'"
done
check "no command is a usage error" expect_fail 2 "Usage" "$LSICTL"
check "key without subcommand" expect_fail 2 "create, list" "$LSICTL" key
check "unknown command" expect_fail 2 "unknown command 'frobnicate'" "$LSICTL" frobnicate
check "no store given" expect_fail 2 "LSIFS_STORE" env -u LSIFS_STORE "$LSICTL" snapshots

check "init" "$LSICTL" init "$S" --block-size 64K
check "init again refuses" expect_fail 1 "not empty" "$LSICTL" init "$S"
check "bad block size" expect_fail 1 "power of two" "$LSICTL" init "$WORK/s2" --block-size 3K
check "key create" "$LSICTL" -s "$S" key create site-a
check "key file is 0600" test "$(stat -c %a "$S/keys/site-a.key")" = 600
check "key list --json" bash -c "LSIFS_STORE='$S' '$LSICTL' key list --json | python3 -c 'import json,sys; k=json.load(sys.stdin); assert k[0][\"extension\"]==\"site-a\"'"

mkdir -p "$WORK/tree"
cp -r /usr/share/common-licenses /etc/apt "$WORK/tree/"
head -c 3000000 /dev/urandom > "$WORK/tree/random.bin"
make_ext4 "$WORK/fs.img" 64M "$WORK/tree"
id=$("$LSICTL" -s "$S" import vol-a "$WORK/fs.img" 2>"$WORK/import.err")
check "import prints a snapshot id" bash -c "[[ '$id' =~ ^[0-9a-f]{16}$ ]]"
check "import summary on stderr" grep -q "blocks stored" "$WORK/import.err"
check "snapshots lists it" bash -c "'$LSICTL' -s '$S' snapshots | grep -q '$id'"
check "snapshots --json" bash -c "'$LSICTL' -s '$S' snapshots vol-a --json | python3 -c '
import json,sys; s=json.load(sys.stdin); assert len(s)==1 and s[0][\"snapshot\"]==\"$id\" and s[0][\"size\"]==64*2**20, s'"
id2=$("$LSICTL" -s "$S" --json import vol-a "$WORK/fs.img" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["new_blocks"]==0, r; print(r["snapshot"])')
check "re-import stores nothing new" test -n "$id2"

before=$(tree_state "$S")
check "missing image: one line, exit 1" expect_fail 1 "nope.img" "$LSICTL" -s "$S" import vol-a "$WORK/nope.img"
check "directory as image" expect_fail 1 "not a regular file" "$LSICTL" -s "$S" import vol-a "$WORK/tree"
check "an all-zero snapshot id is not 'latest'" expect_fail 1 "not all zeros" "$LSICTL" -s "$S" restore -e nobody -v vol-a --snapshot 0000000000000000
check "a session number with trailing garbage is refused" expect_fail 1 "session" "$LSICTL" -s "$S" access show -e site-a -v vol-a --session 1abc
check "bad volume name" expect_fail 1 "volume name" "$LSICTL" -s "$S" import "../x" "$WORK/fs.img"
check "store unchanged by failures" test "$before" = "$(tree_state "$S")"

chmod 640 "$S/keys/site-a.key"
check "group-readable key refused" expect_fail 1 "chmod 600" "$LSICTL" -s "$S" key list
chmod 600 "$S/keys/site-a.key"

# One damaged snapshot file fails only what needs it.
truncate -s 40M "$WORK/small.img"
idb1=$("$LSICTL" -s "$S" import vol-b "$WORK/small.img" 2>/dev/null)
printf 'changed' | dd of="$WORK/small.img" bs=1 seek=4096 conv=notrunc status=none
idb2=$("$LSICTL" -s "$S" import vol-b "$WORK/small.img" 2>/dev/null)
printf 'garbage' | dd of="$S/snapshots/vol-b/$idb2.snap" bs=1 seek=20 conv=notrunc status=none
check "snapshots names the damaged file and exits 1" expect_fail 1 "damaged, not listed: .*$idb2.snap" "$LSICTL" -s "$S" snapshots
check "snapshots still lists the good ones" bash -c "'$LSICTL' -s '$S' snapshots 2>/dev/null | grep -q '$idb1' && '$LSICTL' -s '$S' snapshots 2>/dev/null | grep -q '$id'"
check "another volume restores" bash -c "'$LSICTL' -s '$S' restore -e site-a -v vol-a >/dev/null 2>&1"
check "the damaged volume's latest is refused" expect_fail 1 "latest snapshot of volume 'vol-b' is not known" "$LSICTL" -s "$S" restore -e site-a -v vol-b
check "a good snapshot of it by id restores" bash -c "'$LSICTL' -s '$S' restore -e site-a -v vol-b --snapshot '$idb1' >/dev/null 2>&1"
# lsictl verify: 0 when intact, 3 naming what is damaged, 1 when it cannot run.
check "verify of an intact snapshot exits 0" "$LSICTL" -s "$S" verify "$idb1"
check "verify names the damaged snapshot file, exit 3" bash -c "'$LSICTL' -s '$S' verify --all > '$WORK/verify.out'; test \$? -eq 3 && grep -q 'snapshot $idb2 .*DAMAGED' '$WORK/verify.out'"
check "verify --json lists the damage" bash -c "'$LSICTL' -s '$S' verify --all --json | python3 -c '
import json,sys; r=json.load(sys.stdin); bad=[x for x in r[\"results\"] if not x[\"ok\"]]
assert r[\"damaged\"]==len(bad)>=1 and any(x[\"id\"]==\"$idb2\" and x[\"problems\"] for x in bad), r'"
check "verify of an unknown id: one line, exit 1" expect_fail 1 "no snapshot or LSI has id" "$LSICTL" -s "$S" verify 0123456789abcdef

# A damaged snapshot can be removed; blocks later snapshots use stay.
check "the damaged snapshot is deleted" "$LSICTL" -s "$S" snapshot delete vol-b "$idb2"
check "the store lists whole again" "$LSICTL" -s "$S" snapshots
check "vol-b's latest restores again" bash -c "'$LSICTL' -s '$S' restore -e site-a -v vol-b >/dev/null 2>&1"
check "deleting the snapshot an LSI stands on drops the LSI" bash -c "'$LSICTL' -s '$S' --json snapshot delete vol-b '$idb1' | python3 -c '
import json,sys; r=json.load(sys.stdin); assert len(r[\"dropped_lsis\"])==1 and not r[\"data_kept\"], r'"
printf 'more' | dd of="$WORK/small.img" bs=1 seek=8192 conv=notrunc status=none
idb3=$("$LSICTL" -s "$S" import vol-b "$WORK/small.img" 2>/dev/null)
printf 'again' | dd of="$WORK/small.img" bs=1 seek=200000 conv=notrunc status=none
idb4=$("$LSICTL" -s "$S" import vol-b "$WORK/small.img" 2>/dev/null)
check "deleting a snapshot whose blocks a later one uses keeps them" bash -c "'$LSICTL' -s '$S' --json snapshot delete vol-b '$idb3' | python3 -c '
import json,sys; r=json.load(sys.stdin); assert r[\"data_kept\"] and \"later snapshots\" in r[\"kept_because\"], r'"
check "the later snapshot still verifies after a sweep" bash -c "'$LSICTL' -s '$S' gc >/dev/null 2>&1 && '$LSICTL' -s '$S' verify '$idb4' >/dev/null"
check "deleting the last one frees the kept blocks" bash -c "'$LSICTL' -s '$S' snapshot delete vol-b '$idb4' 2>/dev/null && test -z \"\$(ls '$S/snapshots/vol-b/')\""
# The heat map: its format from the file's name or --format, written whole.
check "heatmap help names the formats and the colours" bash -c "'$LSICTL' access heatmap --help > '$WORK/heat.help' && grep -q 'FILE.svg|FILE.png' '$WORK/heat.help' && grep -q 'viridis' '$WORK/heat.help' && grep -q 'Light grey #cccccc' '$WORK/heat.help' && grep -q 'Red' '$WORK/heat.help' && grep -q 'no text' '$WORK/heat.help'"
check "heatmap as SVG" "$LSICTL" -s "$S" access heatmap -e site-a -v vol-a -o "$WORK/heat.svg"
check "the SVG parses and has its cells" python3 -c '
import sys, xml.etree.ElementTree as E
r = E.parse(sys.argv[1]).getroot(); ns = "{http://www.w3.org/2000/svg}"
assert r.tag == ns + "svg", r.tag
assert r.find(".//" + ns + "rect[@id=\"cell-0\"]") is not None' "$WORK/heat.svg"
check "heatmap as PNG, by the name" bash -c "'$LSICTL' -s '$S' access heatmap -e site-a -v vol-a -o '$WORK/heat.PNG' 2>&1 | grep -q 'wrote .*heat.PNG (png)'"
check "the PNG is a PNG" python3 -c 'import sys; assert open(sys.argv[1], "rb").read(8) == b"\x89PNG\r\n\x1a\n"' "$WORK/heat.PNG"
check "--format png whatever the name" bash -c "'$LSICTL' -s '$S' --json access heatmap -e site-a -v vol-a -o '$WORK/heat.img' --format png | python3 -c '
import json,sys; r=json.load(sys.stdin); assert r==dict(heatmap=\"$WORK/heat.img\", format=\"png\"), r' && cmp -s '$WORK/heat.img' '$WORK/heat.PNG'"
check "a name of no format is refused" expect_fail 1 "name it FILE.svg or FILE.png, or pass --format" "$LSICTL" -s "$S" access heatmap -e site-a -v vol-a -o "$WORK/heat.gif"
check "a name against --format is refused" expect_fail 1 "ends in .svg but --format is png" "$LSICTL" -s "$S" access heatmap -e site-a -v vol-a -o "$WORK/heat.svg" --format png
check "another format is refused" expect_fail 1 "not svg or png" "$LSICTL" -s "$S" access heatmap -e site-a -v vol-a -o "$WORK/heat.jpg" --format jpeg
check "a folder that is not there: one line, exit 1" expect_fail 1 "nodir" "$LSICTL" -s "$S" access heatmap -e site-a -v vol-a -o "$WORK/nodir/heat.svg"
check "no temporary file is left" bash -c "! ls '$WORK' | grep -q 'tmp$'"
check "no file of a refused name" test ! -e "$WORK/heat.gif"
# An image of another size changes the volume's size: only with --resize.
truncate -s 300K "$WORK/bigger.img"
check "another size needs --resize" expect_fail 1 "pass --resize" "$LSICTL" -s "$S" import vol-a "$WORK/bigger.img"
check "with --resize it is imported" bash -c "'$LSICTL' -s '$S' import vol-a '$WORK/bigger.img' --resize >/dev/null 2>&1"
# Ctrl-C during an import: one line, nothing imported, nothing left behind.
head -c 300000000 /dev/urandom >"$WORK/huge.img" 2>/dev/null
snaps_before=$(ls "$S/snapshots/vol-a" | sort)
"$LSICTL" -s "$S" import vol-a "$WORK/huge.img" --resize >/dev/null 2>"$WORK/int.err" &
pid=$!
sleep 0.5
kill -INT "$pid" 2>/dev/null || true
rc=0; wait "$pid" || rc=$?
check "an interrupted import says so" bash -c "[ $rc -eq 1 ] && grep -q 'interrupted; nothing was imported' '$WORK/int.err'"
check "an interrupted import leaves nothing" bash -c "[ '$snaps_before' = \"\$(ls '$S/snapshots/vol-a' | sort)\" ] && [ -z \"\$(ls -A '$S/tmp')\" ]"
rm -f "$WORK/huge.img"
# Ctrl-C during an assembly here (no daemon): cancelled, nothing published or left.
head -c 2000000 /dev/urandom >"$WORK/content.img"
"$LSICTL" -s "$S" import vol-a "$WORK/content.img" --resize >/dev/null 2>&1
lsis_before=$(ls "$S/lsi" | sort)
"$LSICTL" -s "$S" preassemble -e site-a -v vol-a --strategy full --origin-latency 300ms --origin-bandwidth 1Mbit >/dev/null 2>"$WORK/int2.err" &
pid=$!
sleep 0.8
kill -INT "$pid" 2>/dev/null || true
rc=0; wait "$pid" || rc=$?
check "an interrupted assembly says so" bash -c "[ $rc -eq 1 ] && grep -q 'interrupted; nothing was assembled' '$WORK/int2.err'"
check "an interrupted assembly leaves nothing" bash -c "[ '$lsis_before' = \"\$(ls '$S/lsi' | sort)\" ] && [ -z \"\$(ls -A '$S/tmp')\" ]"
# A volume goes whole: its LSIs, its snapshots, what was learned of it.
check "restore on vol-a" bash -c "'$LSICTL' -s '$S' restore -e site-a -v vol-a >/dev/null 2>&1"
check "volume delete reports what it freed" bash -c "'$LSICTL' -s '$S' --json volume delete vol-a | python3 -c '
import json,sys; r=json.load(sys.stdin); assert r[\"snapshots\"]>=2 and len(r[\"dropped_lsis\"])>=1 and r[\"freed\"]>0, r'"
check "the volume is gone" bash -c "test ! -e '$S/snapshots/vol-a' && ! '$LSICTL' -s '$S' snapshots | grep -q vol-a && ! '$LSICTL' -s '$S' lsi list | grep -q vol-a"
check "deleting it again: one line, exit 1" expect_fail 1 "no volume 'vol-a'" "$LSICTL" -s "$S" volume delete vol-a

# The two-site form's certificates: the store's CA, a site's certificate,
# lsid's, revocation; checked with openssl as a site and lsid would.
check "cert list without a CA says how to make one" expect_fail 1 "ca init" "$LSICTL" -s "$S" cert list
check "ca init" bash -c "'$LSICTL' -s '$S' ca init --host region.example --host 10.0.0.5 >/dev/null"
check "a second ca init is refused" expect_fail 1 "already has a certificate authority" "$LSICTL" -s "$S" ca init
check "the CA's keys are 0600" test "$(stat -c %a "$S/ca/ca.key") $(stat -c %a "$S/ca/server.key")" = "600 600"
check "lsid's certificate names its hosts" bash -c "openssl x509 -in '$S/ca/server.crt' -noout -ext subjectAltName | grep -q 'DNS:region.example, IP Address:10.0.0.5'"
check "no certificate for an extension without a key" expect_fail 1 "lsictl key create nobody" "$LSICTL" -s "$S" cert issue nobody --out "$WORK/nobody-tls"
check "... and nothing written for it" test ! -e "$WORK/nobody-tls"
"$LSICTL" -s "$S" key create site-b >/dev/null
serial_a=$(cd "$WORK" && "$LSICTL" -s "$S" --json cert issue site-a | python3 -c '
import json,sys; r=json.load(sys.stdin); assert r["key"]=="site-a-tls/site-a.key" and r["ca"]=="site-a-tls/ca.crt", r; print(r["serial"])')
check "cert issue writes ./EXT-tls" bash -c "[[ '$serial_a' =~ ^[0-9a-f]{32}$ ]] && test -s '$WORK/site-a-tls/site-a.crt'"
check "the site's key is 0600" test "$(stat -c %a "$WORK/site-a-tls/site-a.key")" = 600
check "the site's certificate verifies with the CA" bash -c "openssl verify -CAfile '$WORK/site-a-tls/ca.crt' '$WORK/site-a-tls/site-a.crt' >/dev/null"
check "... names the extension, for clients only" bash -c "openssl x509 -in '$WORK/site-a-tls/site-a.crt' -noout -subject -ext extendedKeyUsage >'$WORK/site-a.txt' && grep -q 'CN *= *site-a' '$WORK/site-a.txt' && grep -q 'Client Authentication' '$WORK/site-a.txt' && ! grep -q 'Server' '$WORK/site-a.txt'"
check "never over a site's files" expect_fail 1 "already exists" bash -c "cd '$WORK' && '$LSICTL' -s '$S' cert issue site-a"
check "--host only with --server" expect_fail 2 "with --server" "$LSICTL" -s "$S" cert issue site-a --host x
check "cert issue --server" bash -c "'$LSICTL' -s '$S' cert issue --server --host lsid.example | grep -q 'restart lsid' && openssl verify -CAfile '$S/ca/ca.crt' '$S/ca/server.crt' >/dev/null"
"$LSICTL" -s "$S" cert issue site-b --out "$WORK/b-tls" --days 30 >/dev/null
check "cert list --json" bash -c "'$LSICTL' -s '$S' cert list --json | python3 -c '
import json,sys; l=json.load(sys.stdin)
assert [(c[\"extension\"], c[\"revoked\"]) for c in l]==[(\"site-a\", False), (\"site-b\", False)] and l[0][\"serial\"]==\"$serial_a\", l'"
check "cert revoke names the serial, and that lsid rereads the list" bash -c "'$LSICTL' -s '$S' cert revoke site-a >'$WORK/revoke.out' && grep -q '$serial_a' '$WORK/revoke.out' && grep -q 'without a restart' '$WORK/revoke.out'"
check "openssl crl shows the revoked serial" bash -c "openssl crl -in '$S/ca/crl.pem' -noout -text | grep -qi 'Serial Number: $serial_a'"
check "openssl verify -crl_check refuses it, and only it" bash -c "! openssl verify -crl_check -CAfile '$S/ca/ca.crt' -CRLfile '$S/ca/crl.pem' '$WORK/site-a-tls/site-a.crt' >/dev/null 2>&1 && openssl verify -crl_check -CAfile '$S/ca/ca.crt' -CRLfile '$S/ca/crl.pem' '$WORK/b-tls/site-b.crt' >/dev/null"
check "cert list marks it revoked" bash -c "'$LSICTL' -s '$S' cert list | grep '$serial_a' | grep -q revoked"
check "revoking again changes nothing" bash -c "'$LSICTL' -s '$S' --json cert revoke site-a | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"revoked\"]==[], r'"
check "revoking an extension never issued to" expect_fail 1 "no certificate was ever issued" "$LSICTL" -s "$S" cert revoke site-c
finish
