#!/usr/bin/env python3
"""Builds realistic Moodle course backups (.mbz) for distd's tests and benchmarks.

A Moodle 4.x backup is one gzip stream over a ustar tar whose FIRST member is .ARCHIVE_INDEX
(written by lib/filestorage/tgz_packer.php), or a zip where $CFG->usezipbackups is set. Members:
moodle_backup.xml (backup/moodle2/backup_xml_transformer / backup_general_helper), files.xml,
files/<sha1[0:2]>/<sha1> (content named by its SHA-1, as in moodledata's filedir), course/,
sections/section_N/, activities/<mod>_N/, plus the directory entries.

  make_mbz.py OUT [--format tgz|zip] [--shortname S] [--fullname F] [--course-id N]
              [--files N] [--file-size BYTES] [--seed S] [--version V] [--level L]
              [--broken truncated|notgzip|nomoodlexml|badxml|traversal|absolute|symlink|hardlink|device|
                        badsha1|sha1dir|bomb|fileoverdir]

--broken badsha1: one files/ member's content no longer matches the SHA-1 in its name (one byte
flipped); sha1dir: one files/ member sits under the wrong files/<xx>/ directory.

--version V: version V changes the content of file 0 (a new SHA-1, so a new files/ member) and
the backup date; every other file stays byte-identical across versions and (by --seed) courses.
"""
import argparse, gzip, hashlib, io, os, random, sys, tarfile, time, zipfile

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--format", default="tgz", choices=["tgz", "zip"])
p.add_argument("--shortname", default="BIO101")
p.add_argument("--fullname", default="Introduction to Biology")
p.add_argument("--course-id", type=int, default=42)
p.add_argument("--files", type=int, default=12)
p.add_argument("--file-size", type=int, default=40000)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--version", type=int, default=1)
p.add_argument("--level", type=int, default=6)
p.add_argument("--spread", type=int, default=0, help="stamp the members over this many seconds, as a real backup does")
p.add_argument("--broken", default="")
p.add_argument("--text", action="store_true", help="half the files compressible text-like content (HTML, XML, many PDFs), half media")
a = p.parse_args()

MTIME = 1730000000 + a.version * 86400
BACKUP_DATE = MTIME + 60


_pool = []


def text_pool():
    if not _pool:
        rng = random.Random(12345)
        words = ["".join(rng.choice("etaoinshrdlucmfwypvbgkqjxz") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
        for _ in range(64):
            _pool.append(" ".join(rng.choice(words) for _ in range(12000)).encode()[:65536])
    return _pool


def content(i):
    """File i's bytes: deterministic; file 0 differs per version."""
    rng = random.Random(a.seed * 1000003 + i * 7919 + (a.version * 31 if i == 0 else 0))
    size = a.file_size if a.file_size < 4096 else a.file_size - (i % 3) * 1024
    size = max(size, 1)
    if not a.text or i % 2 == 1:  # --text: even files text-like, odd ones compressed media
        return rng.randbytes(size)
    pool = text_pool()
    out = bytearray(b"file %d seed %d version-tag %d\n" % (i, a.seed, a.version if i == 0 else 0))
    while len(out) < size:
        out += pool[rng.randrange(len(pool))]
    return bytes(out[:size])


files = []  # (sha1, bytes, filename)
for i in range(a.files):
    b = content(i)
    files.append((hashlib.sha1(b).hexdigest(), b, "resource_%d.pdf" % i))

short = a.shortname
xml_escape = lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
backup_name = "backup-moodle2-course-%d-%s-%s-nu.mbz" % (a.course_id, short.lower(), time.strftime("%Y%m%d-%H%M", time.gmtime(BACKUP_DATE)))
moodle_backup = f"""<?xml version="1.0" encoding="UTF-8"?>
<moodle_backup>
  <information>
    <name>{xml_escape(backup_name)}</name>
    <moodle_version>2024100705</moodle_version>
    <moodle_release>4.5.5 (Build: 20250609)</moodle_release>
    <backup_version>2024100700</backup_version>
    <backup_release>4.5</backup_release>
    <backup_date>{BACKUP_DATE}</backup_date>
    <mnet_remoteusers>0</mnet_remoteusers>
    <include_files>1</include_files>
    <include_file_references_to_external_content>0</include_file_references_to_external_content>
    <original_wwwroot>https://moodle.hq.example.org</original_wwwroot>
    <original_site_identifier_hash>5a1b0c3e9d2f47a8b6c4d1e0f9a8b7c6d5e4f3a2</original_site_identifier_hash>
    <original_course_id>{a.course_id}</original_course_id>
    <original_course_format>topics</original_course_format>
    <original_course_fullname>{xml_escape(a.fullname)}</original_course_fullname>
    <original_course_shortname>{xml_escape(short)}</original_course_shortname>
    <original_course_startdate>1725148800</original_course_startdate>
    <original_course_enddate>1756684800</original_course_enddate>
    <original_course_contextid>{100 + a.course_id}</original_course_contextid>
    <original_system_contextid>1</original_system_contextid>
    <details>
      <detail backup_id="{hashlib.md5(str(BACKUP_DATE).encode()).hexdigest()}">
        <type>course</type>
        <format>moodle2</format>
        <interactive>1</interactive>
        <mode>10</mode>
        <execution>1</execution>
        <executiontime>0</executiontime>
      </detail>
    </details>
    <contents>
      <activities>
        <activity><moduleid>{a.course_id * 10 + 1}</moduleid><sectionid>1</sectionid><modulename>resource</modulename><title>Reading</title><directory>activities/resource_{a.course_id * 10 + 1}</directory></activity>
        <activity><moduleid>{a.course_id * 10 + 2}</moduleid><sectionid>1</sectionid><modulename>forum</modulename><title>Questions</title><directory>activities/forum_{a.course_id * 10 + 2}</directory></activity>
      </activities>
      <sections>
        <section><sectionid>1</sectionid><title>Week 1</title><directory>sections/section_1</directory></section>
      </sections>
      <course><courseid>{a.course_id}</courseid><title>{xml_escape(short)}</title><directory>course</directory></course>
    </contents>
    <settings>
      <setting><level>root</level><name>filename</name><value>{xml_escape(backup_name)}</value></setting>
      <setting><level>root</level><name>users</name><value>0</value></setting>
      <setting><level>root</level><name>files</name><value>1</value></setting>
    </settings>
  </information>
</moodle_backup>
"""
if a.broken == "badxml":
    moodle_backup = moodle_backup.replace("</information>", "</informaton>")

files_xml = ['<?xml version="1.0" encoding="UTF-8"?>\n<files>']
for n, (sha, b, name) in enumerate(files):
    files_xml.append(f"""  <file id="{n + 1}">
    <contenthash>{sha}</contenthash>
    <contextid>{200 + a.course_id}</contextid>
    <component>mod_resource</component>
    <filearea>content</filearea>
    <itemid>0</itemid>
    <filepath>/</filepath>
    <filename>{name}</filename>
    <userid>2</userid>
    <filesize>{len(b)}</filesize>
    <mimetype>application/pdf</mimetype>
    <status>0</status>
    <timecreated>{MTIME}</timecreated>
    <timemodified>{MTIME}</timemodified>
    <source>{name}</source>
    <author>Admin User</author>
    <license>allrightsreserved</license>
    <sortorder>0</sortorder>
    <repositorytype>$@NULL@$</repositorytype>
    <repositoryid>$@NULL@$</repositoryid>
    <reference>$@NULL@$</reference>
  </file>""")
files_xml.append("</files>\n")

mid = a.course_id * 10
xmls = {
    "files.xml": "\n".join(files_xml),
    "questions.xml": '<?xml version="1.0" encoding="UTF-8"?>\n<question_categories>\n</question_categories>\n',
    "course/course.xml": f'<?xml version="1.0" encoding="UTF-8"?>\n<course id="{a.course_id}" contextid="{100 + a.course_id}">\n  <shortname>{xml_escape(short)}</shortname>\n  <fullname>{xml_escape(a.fullname)}</fullname>\n  <format>topics</format>\n</course>\n',
    "course/inforef.xml": '<?xml version="1.0" encoding="UTF-8"?>\n<inforef>\n</inforef>\n',
    "sections/section_1/section.xml": '<?xml version="1.0" encoding="UTF-8"?>\n<section id="1">\n  <number>1</number>\n  <name>Week 1</name>\n</section>\n',
    f"activities/resource_{mid + 1}/resource.xml": f'<?xml version="1.0" encoding="UTF-8"?>\n<activity id="1" moduleid="{mid + 1}" modulename="resource" contextid="{200 + a.course_id}">\n  <resource id="1"><name>Reading</name></resource>\n</activity>\n',
    f"activities/resource_{mid + 1}/inforef.xml": '<?xml version="1.0" encoding="UTF-8"?>\n<inforef>\n  <fileref>\n' + "".join(f"    <file><id>{n + 1}</id></file>\n" for n in range(len(files))) + "  </fileref>\n</inforef>\n",
    f"activities/forum_{mid + 2}/forum.xml": f'<?xml version="1.0" encoding="UTF-8"?>\n<activity id="2" moduleid="{mid + 2}" modulename="forum">\n  <forum id="2"><name>Questions</name></forum>\n</activity>\n',
}
if a.broken != "nomoodlexml":
    xmls = {"moodle_backup.xml": moodle_backup, **xmls}

# Ordered entries: (path, kind, bytes); kind 'd' directory, 'f' file.
entries = []
dirs_seen = set()


def add_dirs(path):
    parts = path.split("/")[:-1]
    for k in range(1, len(parts) + 1):
        d = "/".join(parts[:k]) + "/"
        if d not in dirs_seen:
            dirs_seen.add(d)
            entries.append((d, "d", b""))


for path, text in xmls.items():
    add_dirs(path)
    entries.append((path, "f", text.encode()))
for k, (sha, b, _) in enumerate(sorted(files)):
    path = f"files/{sha[:2]}/{sha}"
    if k == 0 and a.broken == "badsha1":
        b = bytes([b[0] ^ 0x01]) + b[1:]
    if k == 0 and a.broken == "sha1dir":
        path = f"files/{'00' if sha[:2] != '00' else '01'}/{sha}"
    add_dirs(path)
    entries.append((path, "f", b))

if a.broken == "traversal":
    entries.append(("files/../../evil.txt", "f", b"gotcha\n"))
if a.broken == "absolute":
    entries.append(("/etc/evil.txt", "f", b"gotcha\n"))
if a.broken == "bomb":  # 100 MB of zeros: a few hundred KB compressed
    entries.append(("course/bomb.xml", "f", bytes(100_000_000)))
if a.broken == "fileoverdir":  # a member below an unlisted directory, then a file of that name
    entries.append(("loose/inner.txt", "f", b"inner\n"))
    entries.append(("loose", "f", b"a file where a directory is\n"))

out = io.BytesIO() if a.broken in ("truncated",) else None


def write_tgz(dst):
    mt = {path: MTIME + i * a.spread // max(1, len(entries)) for i, (path, kind, b) in enumerate(entries)}
    index = "Moodle archive file index. Count: %d\n" % len(entries)
    for path, kind, b in entries:
        index += "%s\t%s\t%s\t%d\n" % (path, kind, "?" if kind == "d" else len(b), mt[path])
    with gzip.GzipFile(fileobj=dst, mode="wb", compresslevel=a.level, mtime=MTIME) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            def add(path, kind, b):
                ti = tarfile.TarInfo(path)
                ti.mtime = mt.get(path, MTIME)
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                if kind == "d":
                    ti.type = tarfile.DIRTYPE
                    ti.mode = 0o755
                    tar.addfile(ti)
                else:
                    ti.size = len(b)
                    ti.mode = 0o644
                    tar.addfile(ti, io.BytesIO(b))
            add(".ARCHIVE_INDEX", "f", index.encode())
            for e in entries:
                add(*e)
            if a.broken in ("symlink", "hardlink", "device"):
                ti = tarfile.TarInfo("course/link.xml")
                ti.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "device": tarfile.CHRTYPE}[a.broken]
                ti.linkname = "/etc/passwd" if a.broken == "symlink" else "files.xml"
                if a.broken == "device":
                    ti.devmajor, ti.devminor = 1, 3
                tar.addfile(ti)


def write_zip(dst):
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=a.level) as z:
        for path, kind, b in entries:
            zi = zipfile.ZipInfo(path, time.gmtime(MTIME)[:6])
            if kind == "d":
                zi.external_attr = (0o40755 << 16) | 0x10
                z.writestr(zi, b"")
            else:
                zi.external_attr = 0o100644 << 16
                zi.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(zi, b)
        if a.broken == "symlink":
            zi = zipfile.ZipInfo("course/link.xml", time.gmtime(MTIME)[:6])
            zi.external_attr = 0o120777 << 16
            z.writestr(zi, b"/etc/passwd")


tmp = a.out + ".tmp"
with open(tmp, "wb") as f:
    if a.broken == "notgzip":
        f.write(b"This is not a Moodle backup, just some text someone renamed to .mbz\n" * 50)
    else:
        (write_zip if a.format == "zip" else write_tgz)(f)
if a.broken == "truncated":
    size = os.path.getsize(tmp)
    with open(tmp, "r+b") as f:
        f.truncate(size * 2 // 3)
os.replace(tmp, a.out)
