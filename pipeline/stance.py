"""Stance of a sentence (or an article) towards a claim: repeats, disputes or discusses.

Labels
------
``repeats``
    The sentence asserts the claim, in the outlet's voice or on the authority of a
    neutral attribution ("X said", "according to X"), as the claim itself does.
``disputes``
    The sentence denies the claim, calls it false, misleading, a hoax or debunked,
    reports that it was retracted or corrected, or states its negation ("Musk did
    not buy Twitter" against "Musk bought Twitter"). Contrary *figures* are the
    conflict detector's job (``numbers_conflict``); plain negation is ours.
``discusses``
    The sentence mentions or reports the claim without endorsing it: distancing
    reporting verbs ("X claimed / alleged that ..."), hedges ("reportedly", "may",
    "unconfirmed", "rumoured"), questions and "whether" clauses.

How the sentence classifier decides (``classify_stance``)
---------------------------------------------------------
It is a small cue grammar, deterministic and explainable, run on word tokens:

1. Cues are counted in the sentence and in the claim: negations (``not``, ``n't``,
   ``never``, ``no``, ``nobody``, ... and implicative negatives ``refused``,
   ``declined``, ``failed to``), dispute words (``false``, ``denied``, ``hoax``,
   ``debunked``, ``retracted``, ``contrary to``, ``no evidence``, ...), hedges and
   distancing verbs. A negation only counts in the sentence when a content word of
   the claim lies within a few words of it (its scope), so "Twitter, which did not
   comment, said ..." is not a denial.
2. A cue the claim itself carries is part of the claim: "Dorsey denied Musk's
   claim" repeats the claim "Dorsey replied: this is false". What matters is the
   *difference* between sentence and claim.
3. More dispute cues than the claim, or a negation polarity different from the
   claim's, gives ``disputes``; otherwise more hedges / a question / a distancing
   verb gives ``discusses``; otherwise ``repeats``. So negation and contradiction
   can never come out as ``repeats`` - that is a rule, not a learned weight.

Articles (``article_stance``)
-----------------------------
An article's stance aggregates its sentences' evidence, weighted by how much of
the claim each sentence covers, through a gradient-boosted tree model trained
offline on FNC-1 (benchmarks/train_stance.py, training part of the official
baseline split only) and shipped as arrays in ``stance_model.npz``; it is
evaluated with numpy alone. The same model's "unrelated" output gives
``relatedness`` (used by the FNC-1 benchmark; the crawl decides relatedness with
the claim matcher). Without the weights file the article stance falls back to a
vote of its sentences.

Everything here is pure: no I/O except reading the weights once, no download,
numpy only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.text import split_sentences, stem

LABELS: tuple[str, ...] = ("repeats", "disputes", "discusses")
REPEATS, DISPUTES, DISCUSSES = LABELS

MODEL_PATH = Path(__file__).with_name("stance_model.npz")
# ``relatedness`` below this: the article is not about the claim (FNC-1 "unrelated").
# Chosen on the tune split of FNC-1's training part (plateau 0.15-0.30, score 0.8916
# at 0.25 vs 0.8853 at 0.5); the hold-out was not used.
RELATED_THRESHOLD = 0.25


@dataclass(frozen=True, slots=True)
class Stance:
    """A stance label with a confidence in [0, 1]."""

    label: str
    confidence: float


# --------------------------------------------------------------------------- lexicons

_STOP = frozenset(
    """a an the and or but if of in on at to for from by with about as into over after
    before than then that this these those it its it's is are was were be been being has
    have had do does did he she they them his her their we our you your i me my us who whom
    which what when where why how there here so such also just very more most much many
    some any all each other one two said says say told according would will can could
    should may might must shall new year years mr mrs ms""".split()
)

# negations; ``n't`` contractions are recognised by their ending
_NEG = {
    "en": frozenset(
        """not no never none nobody nothing neither nor nowhere cannot without nope
        refused refuses refuse refusing declined declines decline failed fails fail
        lacks lacked lack lacking""".split()
    ),
    "de": frozenset(
        "nicht kein keine keinen keinem keiner nie niemals niemand nichts ohne".split()
    ),
    "es": frozenset("no nunca ningún ninguna ninguno nadie nada sin jamás tampoco".split()),
    "fr": frozenset("ne pas jamais aucun aucune personne rien sans".split()),
}

# words that call a claim false, deny it, or report its retraction
_DISPUTE = {
    "en": frozenset(
        """false falsely untrue fake faked hoax hoaxes debunk debunked debunks debunking
        deny denies denied denying denial denials refute refuted refutes refuting rebut
        rebutted rebuts dismiss dismissed dismisses reject rejected rejects rejecting
        baseless unfounded groundless bogus myth misleading misled mislead misinformation
        disinformation falsehood falsehoods retract retracted retracts retraction
        retractions correction corrected incorrect inaccurate wrong wrongly erroneous
        erroneously fabricated fabrication fabrications lie lies lied lying contrary
        contradict contradicted contradicts disputed disputes dispute disputing
        disproved disprove fraud fraudulent prank pranks satire satirical doubt doubts
        doubted skeptical sceptical nonsense""".split()
    ),
    "de": frozenset(
        """falsch falsche falschen unwahr gefälscht erfunden dementiert dementierte
        bestritten bestreitet widerlegt zurückgezogen korrigiert irreführend""".split()
    ),
    "es": frozenset(
        """falso falsa falsos falsas desmintió desmiente desmentido negó niega bulo
        engañoso engañosa rectificó retractó erróneo errónea mentira""".split()
    ),
    "fr": frozenset(
        """faux fausse fausses démenti dément démenti démentit nié nie infondé
        trompeur trompeuse rétracté corrigé erroné mensonge""".split()
    ),
}

# phrases that dispute without a single dispute word
_DISPUTE_PHRASES = re.compile(
    r"\b(?:no|little|scant|zero|without) (?:\w+ ){0,2}evidence\b|\byet to (?:be|see|find)"
    r" (?:any )?(?:\w+ )?evidence\b|\bnot (?:true|the case|accurate|correct)\b|"
    r"\b(?:is|was|are|were)n't (?:true|the case|accurate|correct)\b|\bfact[- ]check"
    r"(?:ed|ers?)? (?:found|rated|concluded)\b|\bnothing to (?:do|suggest)\b|"
    r"\bthere is no (?:truth|basis)\b|\bcontrary to\b|\bset the record straight\b|"
    r"\bpants on fire\b|\bno basis\b|\bhas been (?:removed|withdrawn|pulled)\b"
)

# journalistic set phrases whose negation denies nothing ("did not respond to a request
# for comment") or that hedge ("could not be verified", "is said to"), rewritten to one
# neutral or hedge token before the cues are counted
_NEUTRAL_PHRASES = re.compile(
    r"\b(?:did|does|do|has|have|had|could|would)(?: not|n't)(?: immediately)? (?:respond|reply|"
    r"return|answer|comment)\w*\b|\b(?:declined|refused|not available|unavailable) (?:to|for)"
    r" (?:comment|respond|answer)\w*\b|\bno comment\b|\bnot immediately\b|\bnot only\b|"
    r"\bnot just\b|\bno matter\b|\bnot least\b|\bwhether or not\b|"
    # who is not named says nothing about the claim ("who asked not to be named")
    r"\b(?:asked|declined|requested|spoke on condition)(?: not)? (?:to be )?(?:named|identified)\b|"
    r"\bnot to be (?:named|identified)\b|\b(?:did|does|would)(?: not|n't) (?:name|identify)\b"
)
_HEDGE_PHRASES = (
    # (cheap substring gates, regex)
    (
        ("verif", "confirm"),
        re.compile(
            r"\b(?:could|can|would|has|have|had)(?: not|n't) (?:be |been )?(?:independently )?"
            r"(?:verified|confirmed|verify|confirm)\b|"
            r"\bnot (?:yet )?(?:been )?(?:confirmed|verified)\b"
        ),
    ),
    (
        ("said to", "believed to", "thought to", "red to", "understood to", "expected to"),
        re.compile(
            r"\b(?:is|are|was|were) (?:said|believed|thought|rumou?red|understood|expected) to\b"
        ),
    ),
    (("reports ",), re.compile(r"\b(?:on|amid|after|following) reports (?:that|of)\b")),
    (("it is ",), re.compile(r"\bit is (?:not )?(?:clear|known)\b")),
)
_NEUTRAL_GATES = ("not", "n't", "declin", "refus", "unavailable", "no comment", "no matter",
                  "named", "identified")

# hedges and distancing reporting verbs: the writer does not vouch for the claim
_HEDGE = {
    "en": frozenset(
        """reportedly allegedly alleged alleges allege alleging purportedly purported
        supposedly apparently seemingly rumor rumors rumored rumour rumours rumoured
        unconfirmed unverified unsubstantiated speculation speculated speculate
        speculates possibly perhaps maybe might may whether claimed claims claiming
        insisted insists insist suggests suggested suggest suggesting appears appeared
        seems seemed unclear uncertain questioned questions question purports""".split()
    ),
    "de": frozenset(
        "angeblich mutmaßlich offenbar vermutlich möglicherweise soll sollen ob behauptet".split()
    ),
    "es": frozenset(
        """supuestamente presuntamente aparentemente quizá quizás posiblemente si afirma
        afirmó""".split()
    ),
    "fr": frozenset(
        "prétendument apparemment peut-être possiblement supposément si affirme affirmé".split()
    ),
}

# neutral attribution (repeats on the source's authority)
_REPORT = frozenset(
    """said says say told stated states announced confirmed reported reports according
    tweeted wrote writes added explained revealed""".split()
)

# per-word presence features for the article model (a fixed, named vocabulary)
CUE_WORDS: tuple[str, ...] = tuple(
    """false fake hoax debunk deny denied refute not no never despite doubt bogus prank
    retract fraud claim claimed reportedly allegedly alleged rumor rumour unconfirmed
    unverified may might could whether if apparently purportedly according said report
    confirmed confirm official true real actually however but although says told appears
    speculation satire video photo image police hoaxes viral sources source announced
    revealed officially statement spokesman spokeswoman spokesperson reports reported
    claims believed allegations purported suggests unclear possibly likely rumours rumors
    speculated insists denies denial truth genuine authentic verified confirmation evidence
    proof appear seem seems supposedly questions skeptical misleading debunked satirical
    parody joke fabricated unfounded rumoured circulating online social media posted
    tweeted reddit facebook twitter""".split()
)
_CUE_INDEX = {w: i for i, w in enumerate(dict.fromkeys(CUE_WORDS))}
_N_CUES = len(_CUE_INDEX)

_TOKEN_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?")
_ASCII_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)?")
_NEG_SCOPE_BEFORE = 3
_NEG_SCOPE_AFTER = 6


def _lex(table: dict[str, frozenset[str]], lang: str) -> frozenset[str]:
    return table.get((lang or "en")[:2].lower(), table["en"])


# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True, slots=True)
class _Text:
    """Tokens of a text with their stems and cue positions."""

    tokens: tuple[str, ...]
    stems: tuple[str, ...]
    content: frozenset[str]
    neg: tuple[int, ...]
    dispute: int
    hedge: int
    report: int
    question: bool


@lru_cache(maxsize=4096)  # ~3 KB an entry: bounded for the long-running crawl
def _analyse(text: str, lang: str = "en") -> _Text:
    low = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    if lang[:2] == "en":
        if any(g in low for g in _NEUTRAL_GATES):
            low = _NEUTRAL_PHRASES.sub(" nocomment ", low)
        for gates, rx in _HEDGE_PHRASES:
            if any(g in low for g in gates):
                low = rx.sub(" unverified ", low)
    tokens = tuple((_ASCII_TOKEN_RE if low.isascii() else _TOKEN_RE).findall(low))
    stems = tuple(stem(t) for t in tokens)
    neg_words = _lex(_NEG, lang)
    dispute_words = _lex(_DISPUTE, lang)
    hedge_words = _lex(_HEDGE, lang)
    neg = tuple(i for i, t in enumerate(tokens) if t in neg_words or t.endswith("n't"))
    dispute = sum(t in dispute_words for t in tokens)
    if lang[:2] == "en":
        dispute += len(_DISPUTE_PHRASES.findall(low))
    hedge = sum(t in hedge_words for t in tokens)
    report = sum(t in _REPORT for t in tokens)
    content = frozenset(
        s for t, s in zip(tokens, stems, strict=True) if t not in _STOP and len(t) > 1
    )
    return _Text(tokens, stems, content, neg, dispute, hedge, report, "?" in text)


def _scoped_negations(sent: _Text, claim_words: frozenset[str]) -> int:
    """Negations of the sentence with a claim content word within their scope."""
    n = 0
    stems = sent.stems
    for i in sent.neg:
        lo = max(0, i - _NEG_SCOPE_BEFORE)
        hi = min(len(stems), i + _NEG_SCOPE_AFTER + 1)
        if any(stems[j] in claim_words for j in range(lo, hi) if j != i):
            n += 1
    return n


@dataclass(frozen=True, slots=True)
class _Pair:
    coverage: float  # share of the claim's content words found in the sentence
    neg_scoped: int
    neg_claim: int
    dispute: int  # dispute cues beyond the claim's own
    hedge: int  # hedge cues beyond the claim's own
    report: int
    question: bool
    label: str
    confidence: float


def _pair(sentence: str, claim: str, lang: str = "en") -> _Pair:
    s = _analyse(sentence, lang)
    c = _analyse(claim, lang)
    cw = c.content
    coverage = len(cw & s.content) / len(cw) if cw else 0.0
    neg_scoped = _scoped_negations(s, cw)
    neg_claim = len(c.neg)
    # a claim that reports a denial ("Dorsey replied: this is false") is repeated by a
    # sentence reporting the denial in other words ("Dorsey rejected the accusation")
    dispute = 0 if c.dispute and s.dispute else max(0, s.dispute - c.dispute)
    hedge = max(0, s.hedge - c.hedge)
    question = s.question and not c.question
    polarity_flip = (neg_scoped % 2) != (neg_claim % 2) if (neg_scoped or neg_claim) else False
    # a claim that is itself a denial ("X denied Y") is repeated by another denial, and
    # disputed by a sentence that drops the denial
    denial_dropped = c.dispute > 0 and s.dispute == 0 and coverage > 0
    if dispute > 0 or polarity_flip or denial_dropped:
        label = DISPUTES
        strength = dispute + (1 if polarity_flip else 0) + (0.5 if denial_dropped else 0)
        confidence = min(0.95, 0.6 + 0.12 * strength + 0.15 * coverage)
        if question or hedge:
            confidence -= 0.1  # "is it false that ...?" still never repeats
    elif hedge > 0 or question:
        label = DISCUSSES
        confidence = min(0.9, 0.55 + 0.1 * hedge + (0.1 if question else 0) + 0.1 * coverage)
    else:
        label = REPEATS
        confidence = min(0.95, 0.4 + 0.55 * coverage)
    return _Pair(
        coverage,
        neg_scoped,
        neg_claim,
        dispute,
        hedge,
        s.report,
        question,
        label,
        round(max(0.0, min(1.0, confidence)), 3),
    )


def classify_stance(
    sentence: str, claim: str, *, context: str | None = None, lang: str = "en"
) -> Stance:
    """The stance of ``sentence`` towards ``claim`` (see the module docstring).

    ``context`` (the neighbouring sentences or the title) only turns a plain
    ``repeats`` into ``disputes`` when it is a short rebuttal that immediately
    follows a quoted claim ("This is false."), the way articles quote and rebut.
    Bad input never raises: empty or non-string text gives ``discusses`` at 0.
    """
    if not isinstance(sentence, str) or not isinstance(claim, str):
        return Stance(DISCUSSES, 0.0)
    if not sentence.strip() or not claim.strip():
        return Stance(DISCUSSES, 0.0)
    lang = lang.lower() if isinstance(lang, str) and lang else "en"
    p = _pair(sentence, claim, lang)
    if p.label == REPEATS and context and isinstance(context, str):
        ctx = _analyse(context, lang)
        c = _analyse(claim, lang)
        own = _analyse(sentence, lang)
        # a rebuttal the sentence itself does not carry ("This is false." after a quote);
        # a sentence that is the rebuttal ("'This is false,' replied X") repeats it
        if len(ctx.tokens) <= 12 and ctx.dispute > max(c.dispute, own.dispute):
            return Stance(DISPUTES, 0.55)
    return Stance(p.label, p.confidence)


def classify_stances(pairs: Iterable[tuple[str, str]], *, lang: str = "en") -> list[Stance]:
    """``classify_stance`` over (sentence, claim) pairs."""
    return [classify_stance(s, c, lang=lang) for s, c in pairs]


# --------------------------------------------------------------------------- articles

_FEATURE_NAMES: list[str] = []


def _names() -> list[str]:
    if _FEATURE_NAMES:
        return _FEATURE_NAMES
    names = [
        "head_len",
        "head_neg",
        "head_dispute",
        "head_hedge",
        "head_question",
        "body_log_sentences",
        "body_coverage",
        "body_bigram_hits",
        "body_bigram_share",
        "first_coverage",
        "first2_coverage",
        "max_coverage",
        "top3_coverage",
        "n_related",
        "share_related",
        "all_dispute_rate",
        "all_hedge_rate",
        "all_neg_rate",
        "all_report_rate",
        "all_question_rate",
        "rel_dispute",
        "rel_hedge",
        "rel_neg_scoped",
        "rel_report",
        "rel_question",
        "rel_repeats",
        "rel_disputes",
        "rel_discusses",
        "rel_share_repeats",
        "rel_share_disputes",
        "rel_share_discusses",
        "top_dispute",
        "top_hedge",
        "top_neg_scoped",
        "top_question",
        "top_label_disputes",
        "top_label_discusses",
        "wsum_disputes",
        "wsum_discusses",
        "wsum_repeats",
        "first_dispute",
        "first_hedge",
        "first_neg_scoped",
        "head_neg_claimwords_in_body",
    ]
    names += [f"cue_body_{w}" for w in _CUE_INDEX]
    names += [f"cue_rel_{w}" for w in _CUE_INDEX]
    names += [f"cue_head_{w}" for w in _CUE_INDEX]
    _FEATURE_NAMES.extend(names)
    return _FEATURE_NAMES


def feature_names() -> list[str]:
    """Names of the article-level feature columns, in order."""
    return list(_names())


def _bigrams(stems: Sequence[str], tokens: Sequence[str]) -> set[tuple[str, str]]:
    keep = [s for t, s in zip(tokens, stems, strict=True) if t not in _STOP]
    return set(zip(keep, keep[1:], strict=False))


def article_features(sentences: Sequence[str], claim: str, lang: str = "en") -> np.ndarray:
    """The article-level feature vector (``feature_names()``) of sentences vs a claim."""
    names = _names()
    f = np.zeros(len(names), dtype=np.float64)
    sents = [s for s in sentences if isinstance(s, str) and s.strip()]
    head = _analyse(claim, lang)
    f[0] = len(head.tokens)
    f[1] = len(head.neg)
    f[2] = head.dispute
    f[3] = head.hedge
    f[4] = float(head.question)
    base = 44
    for t in head.tokens:
        i = _CUE_INDEX.get(t)
        if i is not None:
            f[base + 2 * _N_CUES + i] = 1.0
    if not sents:
        return f
    n = len(sents)
    f[5] = math.log1p(n)
    analysed = [_analyse(s, lang) for s in sents]
    pairs = [_pair(s, claim, lang) for s in sents]
    cw = head.content
    body_words: set[str] = set()
    for a in analysed:
        body_words |= a.content
    f[6] = len(cw & body_words) / len(cw) if cw else 0.0
    hb = _bigrams(head.stems, head.tokens)
    bb: set[tuple[str, str]] = set()
    for a in analysed:
        bb |= _bigrams(a.stems, a.tokens)
    hits = len(hb & bb)
    f[7] = hits
    f[8] = hits / len(hb) if hb else 0.0
    cov = np.array([p.coverage for p in pairs])
    f[9] = cov[0]
    f[10] = cov[:2].max()
    f[11] = cov.max()
    order = np.argsort(-cov, kind="stable")
    top = order[:3]
    f[12] = cov[top].mean()
    related = [i for i in range(n) if cov[i] >= 0.3]
    f[13] = len(related)
    f[14] = len(related) / n
    f[15] = sum(a.dispute for a in analysed) / n
    f[16] = sum(a.hedge for a in analysed) / n
    f[17] = sum(len(a.neg) for a in analysed) / n
    f[18] = sum(a.report for a in analysed) / n
    f[19] = sum(a.question for a in analysed) / n
    lab_index = {REPEATS: 0, DISPUTES: 1, DISCUSSES: 2}
    if related:
        rp = [pairs[i] for i in related]
        f[20] = sum(p.dispute for p in rp)
        f[21] = sum(p.hedge for p in rp)
        f[22] = sum(p.neg_scoped for p in rp)
        f[23] = sum(p.report for p in rp)
        f[24] = sum(p.question for p in rp)
        counts = [0, 0, 0]
        for p in rp:
            counts[lab_index[p.label]] += 1
        f[25:28] = counts
        f[28:31] = np.array(counts) / len(rp)
    tp = [pairs[i] for i in top]
    f[31] = sum(p.dispute for p in tp)
    f[32] = sum(p.hedge for p in tp)
    f[33] = sum(p.neg_scoped for p in tp)
    f[34] = sum(p.question for p in tp)
    f[35] = float(tp[0].label == DISPUTES)
    f[36] = float(tp[0].label == DISCUSSES)
    for p in pairs:
        w = p.coverage * p.coverage
        f[37 + {DISPUTES: 0, DISCUSSES: 1, REPEATS: 2}[p.label]] += w
    p0 = pairs[0]
    f[40] = p0.dispute
    f[41] = p0.hedge
    f[42] = p0.neg_scoped
    f[43] = sum(p.neg_scoped for p in pairs)
    rel_set = set(related) | {int(i) for i in top}
    for k, a in enumerate(analysed):
        for t in a.tokens:
            i = _CUE_INDEX.get(t)
            if i is not None:
                f[base + i] = 1.0
                if k in rel_set:
                    f[base + _N_CUES + i] = 1.0
    return f


# --------------------------------------------------------------------------- tree model


class _Forest:
    """Gradient-boosted trees as flat arrays, evaluated with numpy."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as z:
            self.feature = z["feature"].astype(np.int64)
            self.threshold = z["threshold"].astype(np.float64)
            self.left = z["left"].astype(np.int64)
            self.right = z["right"].astype(np.int64)
            self.value = z["value"].astype(np.float64)
            self.is_leaf = z["is_leaf"].astype(bool)
            self.roots = z["roots"].astype(np.int64)
            self.tree_class = z["tree_class"].astype(np.int64)
            self.baseline = z["baseline"].astype(np.float64)
            self.classes = [str(c) for c in z["classes"]]
            self.depth = int(z["depth"])
            self.n_features = int(z["n_features"])

    def raw(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(x)
        n = x.shape[0]
        idx = np.broadcast_to(self.roots, (n, len(self.roots))).copy()
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            leaf = self.is_leaf[idx]
            if leaf.all():
                break
            go_left = x[rows, self.feature[idx]] <= self.threshold[idx]
            nxt = np.where(go_left, self.left[idx], self.right[idx])
            idx = np.where(leaf, idx, nxt)
        out = np.tile(self.baseline, (n, 1))
        vals = self.value[idx]
        for k in range(len(self.classes)):
            out[:, k] += vals[:, self.tree_class == k].sum(axis=1)
        return out

    def proba(self, x: np.ndarray) -> np.ndarray:
        r = self.raw(x)
        r -= r.max(axis=1, keepdims=True)
        e = np.exp(r)
        return e / e.sum(axis=1, keepdims=True)


_MODEL: list[_Forest | None] = []


def _model() -> _Forest | None:
    if not _MODEL:
        try:
            m = _Forest(MODEL_PATH)
            _MODEL.append(m if m.n_features == len(_names()) else None)
        except (OSError, KeyError, ValueError):
            _MODEL.append(None)
    return _MODEL[0]


def _as_sentences(article: str | Sequence[str]) -> list[str]:
    if isinstance(article, str):
        return split_sentences(article)
    return [s for s in article if isinstance(s, str)]


def article_probabilities(
    articles: Sequence[str | Sequence[str]], claims: Sequence[str], lang: str = "en"
) -> tuple[list[str], np.ndarray] | None:
    """Class probabilities of the article model for each (article, claim), or None."""
    m = _model()
    if m is None:
        return None
    x = np.vstack(
        [article_features(_as_sentences(a), c, lang) for a, c in zip(articles, claims, strict=True)]
    )
    return m.classes, m.proba(x)


_FNC_TO_STANCE = {"agree": REPEATS, "disagree": DISPUTES, "discuss": DISCUSSES}


def _vote(sentences: Sequence[str], claim: str, lang: str) -> Stance:
    pairs = [_pair(s, claim, lang) for s in sentences if isinstance(s, str) and s.strip()]
    if not pairs:
        return Stance(DISCUSSES, 0.0)
    w = {label: 0.0 for label in LABELS}
    for p in pairs:
        w[p.label] += p.coverage * p.coverage * p.confidence
    total = sum(w.values())
    if total <= 0:
        return Stance(DISCUSSES, 0.0)
    label = max(LABELS, key=lambda k: w[k])
    return Stance(label, round(w[label] / total, 3))


def assess_article(
    sentences: str | Sequence[str], claim: str, *, lang: str = "en"
) -> tuple[float, Stance]:
    """(relatedness, stance) of an article towards a claim, from one feature pass.

    relatedness is the model's probability that the article is about the claim at
    all (FNC-1's related vs unrelated); the stance comes from the related-class
    probabilities, renormalised, so the label is one of ``LABELS``. The sentence-level
    rule (a disputing sentence never repeats) is a feature here, not an override: an
    article that quotes a denial and then confirms the claim still agrees with it
    (forcing it cost 0.018 FNC-1 relative score on the training part). Without the
    weights file: word coverage and a vote of the sentences.
    """
    if not isinstance(claim, str) or not claim.strip():
        return 0.0, Stance(DISCUSSES, 0.0)
    lang = lang.lower() if isinstance(lang, str) and lang else "en"
    sents = _as_sentences(sentences)
    out = article_probabilities([sents], [claim], lang)
    if out is None:
        feats = article_features(sents, claim, lang)
        return float(feats[_names().index("body_coverage")]), _vote(sents, claim, lang)
    classes, proba = out
    p = {c: float(v) for c, v in zip(classes, proba[0], strict=True)}
    related_p = 1.0 - p.get("unrelated", 0.0)
    related = {_FNC_TO_STANCE[c]: v for c, v in p.items() if c in _FNC_TO_STANCE}
    total = sum(related.values()) or 1.0
    label = max(LABELS, key=lambda k: related.get(k, 0.0))
    return related_p, Stance(label, round(related.get(label, 0.0) / total, 3))


def article_stance(sentences: str | Sequence[str], claim: str, *, lang: str = "en") -> Stance:
    """The stance of a whole article (its sentences, or its text) towards a claim."""
    return assess_article(sentences, claim, lang=lang)[1]


def relatedness(sentences: str | Sequence[str], claim: str, *, lang: str = "en") -> float:
    """Probability that the article is about the claim at all (used for FNC-1)."""
    return assess_article(sentences, claim, lang=lang)[0]
