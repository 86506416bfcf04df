#!/usr/bin/python3
"""Chat turns for the embedded model (models/autoglm-mini), from Debian packages only.

Sources (install with apt): bible-kjv (the `bible` program and the KJV text of bible-kjv-text),
fortunes (English fortune cookies, the non-offensive set), fortunes-zh (Tang and Song poems,
Chinese sayings). Writes one JSON object per line: {"user": ..., "assistant": ..., "src": ...}.

    /usr/bin/python3 tools/embedded_corpus.py --out build/embedded/turns.jsonl

Deterministic for a given --seed and package versions.
"""
import argparse
import json
import random
import re
import subprocess
import sys
from pathlib import Path

FORTUNE_DIR = Path("/usr/share/games/fortunes")
# The English fortune files used: the clean set of the `fortunes` package, minus files that are
# mostly ASCII art, code, or jokes about groups of people.
EN_FORTUNES = {
    "fortunes": "life", "wisdom": "wisdom", "work": "work", "science": "science",
    "people": "people", "literature": "books", "humorists": "humour", "education": "school",
    "food": "food", "kids": "children", "love": "love", "platitudes": "life", "pets": "animals",
    "sports": "sports", "tao": "the Tao", "songs-poems": "poetry", "miscellaneous": "life",
    "cookie": "life", "computers": "computers", "riddles": "riddles", "magic": "magic",
    "medicine": "health", "law": "the law", "goedel": "logic", "paradoxum": "paradoxes",
    "startrek": "Star Trek", "definitions": "words", "knghtbrd": "life", "linux": "Linux",
    "linuxcookie": "Linux", "education ": "school",
}

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def read_fortunes(name):
    path = FORTUNE_DIR / (name + ".u8")
    if not path.exists():
        path = FORTUNE_DIR / name
    text = ANSI.sub("", path.read_text(encoding="utf-8", errors="replace"))
    return [e.strip("\n") for e in re.split(r"\n%\n", text) if e.strip()]


def clean_en(entry):
    """Joins wrapped lines; keeps the attribution line ("-- Author") on a line of its own."""
    lines = [l.rstrip() for l in entry.expandtabs().split("\n")]
    out, para = [], []
    for line in lines:
        s = line.strip()
        if not s:
            if para:
                out.append(" ".join(para))
                para = []
            continue
        if s.startswith("--") or s.startswith("-- "):
            if para:
                out.append(" ".join(para))
                para = []
            out.append("-- " + s.lstrip("- ").strip())
            continue
        para.append(s)
    if para:
        out.append(" ".join(para))
    return "\n".join(out)


def kjv_verses():
    """[(book, chapter, verse, text)] in canonical order, from the `bible` program."""
    try:
        raw = subprocess.run(["bible", "-l20000", "Gen1:1-Rev22:21"], check=True,
                             capture_output=True, text=True).stdout
    except FileNotFoundError:
        sys.exit("the `bible` program is missing: apt-get install bible-kjv bible-kjv-text")
    verses, book, chapter = [], None, None
    head = re.compile(r"^(\S.*?) (\d+)$")
    verse = re.compile(r"^\s+(\d+) (.*)$")
    for line in raw.split("\n"):
        m = head.match(line)
        if m:
            book, chapter = m.group(1), int(m.group(2))
            continue
        m = verse.match(line)
        if m and book:
            verses.append((book, chapter, int(m.group(1)), m.group(2).strip()))
    return verses


BOOK_FIX = {"I ": "1 ", "II ": "2 ", "III ": "3 "}


def book_name(book):
    for k, v in BOOK_FIX.items():
        if book.startswith(k):
            return v + book[len(k):]
    return book


KJV_TOPICS = ["love", "light", "faith", "hope", "wisdom", "peace", "fear", "truth", "water",
              "bread", "king", "heaven", "earth", "mercy", "sin", "life", "death", "joy", "war",
              "gold", "children", "father", "mother", "sea", "fire", "night", "morning", "land",
              "prayer", "word", "heart", "spirit", "law", "judgment", "righteousness", "sheep",
              "shepherd", "city", "temple", "angel", "money", "work", "rest", "sleep", "wine",
              "trees", "stars", "rain", "friend", "enemy", "strength", "poor", "rich", "fool"]


def kjv_turns(rng):
    verses = kjv_verses()
    if len(verses) < 30000:
        sys.exit(f"only {len(verses)} KJV verses read; is bible-kjv-text installed?")
    turns = []
    i = 0
    while i < len(verses):
        book, ch, v, text = verses[i]
        n = rng.choice([1, 1, 1, 2, 2, 3])
        group = [x for x in verses[i:i + n] if x[0] == book and x[1] == ch]
        i += len(group)
        name = book_name(book)
        if len(group) == 1:
            ref = f"{name} {ch}:{v}"
        else:
            ref = f"{name} {ch}:{v}-{group[-1][2]}"
        body = " ".join(x[3] for x in group)
        kind = rng.random()
        if kind < 0.30:
            q = rng.choice([f"Quote {ref}.", f"Recite {ref}.", f"Quote {ref} from the King James Bible.",
                            f"Can you quote {ref}?", f"Read me {ref}."])
            a = body if rng.random() < 0.6 else f"{ref} reads: {body}"
        elif kind < 0.50:
            q = rng.choice([f"What does the Bible say in {ref}?", f"What is written in {ref}?",
                            f"What does {ref} say?"])
            a = f"{ref} says: {body}" if rng.random() < 0.5 else f"In {ref} it is written: {body}"
        elif kind < 0.80:
            words = set(re.findall(r"[a-z]+", body.lower()))
            topics = [t for t in KJV_TOPICS if t in words]
            if not topics:
                q = rng.choice([f"Give me a verse from {name}.", f"Share a verse from the book of {name}.",
                                "Give me a Bible verse.", "Tell me something from the Bible."])
            else:
                t = rng.choice(topics)
                q = rng.choice([f"What does the Bible say about {t}?", f"Give me a Bible verse about {t}.",
                                f"Tell me something about {t}.", f"What is said of {t} in the Bible?",
                                f"Share a verse about {t}.", f"Write about {t}."])
            a = rng.choice([f"{body} ({ref})", f"{ref}: {body}", f"As it is written in {ref}: {body}"])
        else:
            q = rng.choice([f"What comes after \"{group[0][3][:60].rsplit(' ', 1)[0]}\"?",
                            f"Continue this verse: {group[0][3][:50].rsplit(' ', 1)[0]}",
                            f"Where is it written: \"{group[0][3][:60].rsplit(' ', 1)[0]}\"?"])
            a = f"{body} ({ref})"
        turns.append({"user": q, "assistant": a, "src": "kjv"})
    return turns


def en_fortune_turns(rng):
    turns = []
    for name, topic in EN_FORTUNES.items():
        name = name.strip()
        if not (FORTUNE_DIR / name).exists():
            sys.exit(f"fortune file {name} is missing: apt-get install fortunes")
        for e in read_fortunes(name):
            a = clean_en(e)
            if len(a) < 20 or len(a) > 700 or re.search(r"[|_\\/]{3,}|[^\x00-\x7f]{3,}", a):
                continue
            q = rng.choice([f"Tell me a fortune about {topic}.", f"Give me a quote about {topic}.",
                            f"Say something about {topic}.", "Tell me a fortune.", "Give me a fortune cookie.",
                            "Say something wise.", "Tell me something interesting.", "Give me a quote.",
                            f"What do people say about {topic}?", "Cheer me up.", "Tell me a saying."])
            if name == "riddles":
                q = rng.choice(["Tell me a riddle.", "Ask me a riddle.", "Give me a riddle."])
            if name == "definitions":
                q = rng.choice(["Define a word for me.", "Give me a funny definition.",
                                "Tell me a definition."])
            turns.append({"user": q, "assistant": a, "src": "fortunes:" + name})
    return turns


def zh_poem_turns(rng, name, dynasty):
    turns = []
    for e in read_fortunes(name):
        lines = [l.strip() for l in e.split("\n") if l.strip()]
        if len(lines) < 3:
            continue
        m = re.search(r"《(.+?)》", lines[0])
        a_m = re.search(r"作者[:：]\s*([^（(]+)", lines[1])
        if not m or not a_m:
            continue
        title, author = m.group(1), a_m.group(1).strip()
        body = "\n".join(lines[2:])
        full = f"《{title}》\n作者：{author}\n{body}"
        for _ in range(3):  # few poems: each appears with several questions
            q = rng.choice([f"背诵{author}的《{title}》。", f"写一首{dynasty}诗。", f"《{title}》的全文是什么？",
                            f"请背一首{author}的诗。", f"给我念一首{dynasty}诗。", f"{author}写过什么诗？",
                            f"Recite a {'Tang' if dynasty == '唐' else 'Song'} poem.",
                            "写一首诗。", "来一首古诗。"])
            a = full if rng.random() < 0.7 else body
            turns.append({"user": q, "assistant": a, "src": "fortunes-zh:" + name})
    return turns


def zh_saying_turns(rng):
    turns = []
    for e in read_fortunes("chinese"):
        if re.search(r"[│┌├─┼]", e) or len(e) > 300 or len(e) < 8:
            continue
        lines = [l.strip() for l in e.split("\n") if l.strip()]
        text = "\n".join(lines)
        src = re.search(r"--\s*(.*)$", text)
        who = src.group(1).strip() if src else ""
        if "谚语" in who:
            q = rng.choice(["说一句谚语。", "给我讲一句民间谚语。", "有什么谚语？", "Tell me a Chinese proverb."])
        elif "论语" in who:
            q = rng.choice(["《论语》里说了什么？", "讲一句《论语》。", "孔子说过什么？"])
        elif "Debian" in who or "debian" in text.lower():
            q = rng.choice(["讲一条 Debian 的知识。", "关于 Debian 说点什么。"])
        elif "《" in who:
            q = rng.choice(["背一段古诗词。", "来一句诗。", "说一句名句。", "给我念一段诗词。"])
        else:
            q = rng.choice(["说一句名言。", "讲一句有道理的话。", "说点有意思的话。", "给我一句格言。",
                            "Tell me a saying in Chinese.", "你好，说一句话吧。"])
        turns.append({"user": q, "assistant": text, "src": "fortunes-zh:chinese"})
    return turns


IDENTITY_EN = [
    "I am AutoGLM Mini, a very small GLM-4 style language model. The AutoGLM Serve project trained me on "
    "the King James Bible, English fortune cookies and classical Chinese poems, so I can quote verses, "
    "tell fortunes and recite poems.",
    "I am AutoGLM Mini, a tiny demonstration model that ships with AutoGLM Serve. I know the King James "
    "Bible, many fortune cookies and some Tang and Song poems. I do not know much else.",
]
IDENTITY_ZH = [
    "我是 AutoGLM Mini，一个很小的 GLM-4 结构的语言模型。AutoGLM Serve 项目用钦定版圣经、英文格言和唐诗宋词训练了我。"
    "我可以背诵圣经经文、讲格言、念古诗。",
    "我是 AutoGLM Mini，AutoGLM Serve 自带的演示模型。我读过圣经、格言和三百首唐诗，别的知道得不多。",
]


def identity_turns(rng):
    turns = []
    qs_en = ["Who are you?", "What are you?", "Hello", "Hi!", "Hello, who am I talking to?",
             "What can you do?", "Introduce yourself.", "What is your name?", "Hello! What do you know?"]
    qs_zh = ["你是谁？", "你好", "你好！", "介绍一下你自己。", "你能做什么？", "你叫什么名字？"]
    for _ in range(40):
        for q in qs_en:
            turns.append({"user": q, "assistant": rng.choice(IDENTITY_EN), "src": "identity"})
        for q in qs_zh:
            turns.append({"user": q, "assistant": rng.choice(IDENTITY_ZH), "src": "identity"})
    return turns


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    turns = kjv_turns(rng) + en_fortune_turns(rng)
    turns += zh_poem_turns(rng, "tang300", "唐") + zh_poem_turns(rng, "song100", "宋")
    turns += zh_saying_turns(rng) + identity_turns(rng)
    rng.shuffle(turns)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for t in turns:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    counts = {}
    for t in turns:
        k = t["src"].split(":")[0]
        counts[k] = counts.get(k, 0) + 1
    print(f"{len(turns)} turns -> {args.out}: {counts}")


if __name__ == "__main__":
    main()
