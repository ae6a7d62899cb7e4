#!/usr/bin/env python3
"""Rebuilds three of the code tables in this folder from the packages they come from
(see README.md for origins and licences):

  stati_istat.csv        PyPI codicefiscale-ita 0.1.2 (MIT), names checked against and
                         repaired from npm @italia-tools/faker 0.2.0-alpha.0 (MIT)
  lingue_iso639.csv      Debian iso-codes 4.15.0-1 (LGPL-2.1+)
  professioni_cp2011.csv input/vocabulary/CS_professioni.xml of a checkout of
                         https://github.com/hl7-it/terminology (commit 0683de66504194c6d76b0975fb69341b1ee9e776)

Download the packages into data/sorgenti/ (not kept in the repository):
  pip download --no-deps -d data/sorgenti/pypi/codicefiscale-ita codicefiscale-ita==0.1.2
  mkdir -p data/sorgenti/npm data/sorgenti/deb
  (cd data/sorgenti/npm && npm pack @italia-tools/faker@0.2.0-alpha.0)
  (cd data/sorgenti/deb && apt-get download iso-codes=4.15.0-1)
then: python3 data/rigenera.py [PATH-OF-THE-HL7-TERMINOLOGY-CHECKOUT]
Only the standard library, dpkg-deb and git are used.
"""
import csv
import glob
import gettext
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import xml.etree.ElementTree as ET
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
DL = os.path.join(HERE, "sorgenti")
REPLACEMENT = "\ufffd"


def one(pattern):
    hits = sorted(glob.glob(os.path.join(DL, pattern)))
    if len(hits) != 1:
        sys.exit(f"expected exactly one file for {pattern}, got {hits}")
    return hits[0]


def write_csv(path, header, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    print(f"wrote {os.path.relpath(path, HERE)}: {len(rows)} rows")


def deb_member(deb, member):
    """Extract one file from a .deb with dpkg-deb (no root needed)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", deb, tmp], check=True)
        with open(os.path.join(tmp, member.lstrip("./")), "rb") as f:
            return f.read()


# ---------------------------------------------------------------- stati esteri
def stati():
    whl = one("pypi/codicefiscale-ita/codicefiscale_ita-*.whl")
    with zipfile.ZipFile(whl) as z:
        raw = z.read("codicefiscale/data/tabella_stati.csv").decode("utf-8")
    rows = [r for r in csv.reader(io.StringIO(raw), delimiter=";") if any(c.strip() for c in r)]
    header, data = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}

    # Second copy of the same ISTAT table, used to repair the 7 names that the
    # PyPI copy carries with U+FFFD (accents lost before packaging).
    tgz = one("npm/italia-tools-faker-*.tgz")
    with tarfile.open(tgz) as t:
        js = t.extractfile("package/dist/lib/data/countries.json.cjs").read().decode("utf-8")
    body = js[js.index("["): js.rindex("]") + 1]
    body = re.sub(r"([{,])([A-Za-z0-9_]+):", r'\1"\2":', body)  # JS object keys -> JSON
    faker = {str(e["codiceIstat"]): e for e in json.loads(body)}

    def nd(v):
        v = v.strip()
        return "" if v in ("n.d.", "") else v

    out, repaired, mismatches = [], [], []
    for r in data:
        code = r[col["Codice ISTAT"]].strip()
        it = r[col["Denominazione Italiana"]].strip()
        en = r[col["Denominazione EN"]].strip()
        belf = nd(r[col["Codice Catastale"]])
        f = faker.get(code)
        if f is None:
            mismatches.append((code, "missing in npm copy"))
        else:
            if (f.get("codiceAt") or "") != belf:
                mismatches.append((code, f"belfiore {belf!r} vs npm {f.get('codiceAt')!r}"))
            for label, key in (("it", "denominazioneIt"), ("en", "denominazioneEn")):
                val = it if label == "it" else en
                if REPLACEMENT in val:
                    fixed = f[key]
                    # accept the npm spelling only if it matches the damaged one outside the lost chars
                    pat = "^" + ".+?".join(re.escape(p) for p in val.split(REPLACEMENT)) + "$"
                    if not re.match(pat, fixed):
                        sys.exit(f"cannot repair {code} {val!r} with {fixed!r}")
                    repaired.append((code, val, fixed))
                    if label == "it":
                        it = fixed
                    else:
                        en = fixed
                elif val != f[key]:
                    mismatches.append((code, f"{label} name {val!r} vs npm {f[key]!r}"))
        if REPLACEMENT in it + en:
            sys.exit(f"unrepaired U+FFFD in {code}")
        out.append([
            code, belf, it, en,
            r[col["Stato(S)/Territorio(T)"]].strip(),
            nd(r[col["Codice ISTAT_Stato Padre"]]),
            nd(r[col["Codice ISO 3166 alpha2"]]),
            nd(r[col["Codice ISO 3166 alpha3"]]),
            nd(r[col["Codice MIN"]]),
            nd(r[col["Codice UNSD_M49"]]),
            r[col["Denominazione Continente (IT)"]].strip(),
            r[col["Denominazione Area (IT)"]].strip(),
        ])
    extra_npm = sorted(set(faker) - {r[0] for r in out})
    out.sort(key=lambda r: r[0])
    write_csv(os.path.join(HERE, "stati_istat.csv"),
              ["codice_istat", "codice_belfiore", "denominazione", "denominazione_en", "tipo",
               "codice_istat_stato_padre", "iso3166_alpha2", "iso3166_alpha3", "codice_min",
               "codice_unsd_m49", "continente", "area"], out)
    print("  repaired names:", repaired)
    print("  differences vs npm copy:", mismatches or "none", "; only in npm:", extra_npm or "none")



# -------------------------------------------------------------------- lingue
def lingue():
    deb = one("deb/iso-codes_*.deb")
    data = json.loads(deb_member(deb, "usr/share/iso-codes/json/iso_639-2.json"))["639-2"]
    mo = deb_member(deb, "usr/share/locale/it/LC_MESSAGES/iso_639-2.mo")
    it = gettext.GNUTranslations(io.BytesIO(mo))
    rows = []
    for e in data:
        en = e["name"]
        tr = it.gettext(en)
        it_name = tr if tr != en else ""
        t = e["alpha_3"].upper()
        rows.append([t, "T", t, e.get("alpha_2", ""), en, it_name])
        if "bibliographic" in e:
            b = e["bibliographic"].upper()
            rows.append([b, "B", t, e.get("alpha_2", ""), en, it_name])
    rows.sort(key=lambda r: (r[0], r[1]))
    codes = [r[0] for r in rows]
    assert len(codes) == len(set(codes)), "duplicate alpha-3"
    write_csv(os.path.join(HERE, "lingue_iso639.csv"),
              ["codice", "tipo", "codice_terminologico", "alpha_2", "denominazione_en", "denominazione_it"],
              rows)
    print(f"  with Italian name: {sum(1 for r in rows if r[5])}/{len(rows)}")


# -------------------------------------------------------------------- CP2011
def cp2011(repo):
    if not os.path.isdir(repo):
        print(f"{repo}: not a checkout of hl7-it/terminology: professioni_cp2011.csv left as it is")
        return
    commit = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    xml = subprocess.run(["git", "-C", repo, "show", "HEAD:input/vocabulary/CS_professioni.xml"],
                         capture_output=True, check=True).stdout
    ns = "{http://hl7.org/fhir}"
    root = ET.fromstring(xml)
    rows = []
    for c in root.iter(ns + "concept"):
        code = c.find(ns + "code").get("value").strip()
        title = " ".join(c.find(ns + "display").get("value").split())
        rows.append([code, len(code.split(".")), title])
    rows.sort(key=lambda r: [int(x) for x in r[0].split(".")])
    lv = Counter(r[1] for r in rows)
    # CP2011: 9 grandi gruppi, 37 gruppi, 129 classi, 511 categorie, 800 unità professionali.
    assert dict(lv) == {1: 9, 2: 37, 3: 129, 4: 511, 5: 800}, lv
    write_csv(os.path.join(HERE, "professioni_cp2011.csv"), ["codice", "livello", "titolo"], rows)
    print(f"  source commit {commit}; per level: {dict(sorted(lv.items()))}")


if __name__ == "__main__":
    stati()
    lingue()
    if len(sys.argv) > 1:
        cp2011(sys.argv[1])
