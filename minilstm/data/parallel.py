"""Parallel text for translation: a built-in English -> French corpus, your own files, batching by length.

Section 4.3 of Zaremba et al. (2014) applies the same regularized LSTM to
machine translation (WMT'14 English -> French, their Table 3), following
Sutskever et al. (2014). No encoder, no decoder, no attention: translation is
treated as *language modelling of one long sequence*

    reversed(source)  <sep>  target  <eos>

and the model is scored only on the part after ``<sep>``. The loss over those
positions is -log P(target | source), so this is a *conditional* language
model: the LSTM reads the source, and its state at ``<sep>`` must carry
everything it needs to write the translation.

Why the source is reversed (Sutskever et al.'s trick): the first target words
usually translate the first source words. Reversed, "the" is read last, right
before ``<sep>``, so the first words to be written sit a few steps from the
words they depend on instead of a whole sentence away; the gradient of those
short paths is what gets the training going.

One pair as the model sees it
-----------------------------

With Vs = len(src_vocab) and Vt = len(tgt_vocab), the *input* vocabulary has
Vin = Vs + 1 + Vt ids: the source ids [0, Vs), the separator Vs, and the
target ids shifted by Vs + 1. The *output* (softmax) vocabulary is just the
target vocabulary [0, Vt), ``<eos>`` included. For "the cat sleeps" ->
"le chat dort" (S = 3 source words, M = 3 target words, T = S + 1 + M = 7)::

    position   0        1     2     3       4      5       6
    input      sleeps   cat   the   <sep>   le+    chat+   dort+     (w+ = id of w + Vs + 1)
    target     -        -     -     le      chat   dort    <eos>
    weight     0        0     0     1       1      1       1

At ``<sep>`` the model predicts the first target word, at the last target
word it predicts ``<eos>``: M + 1 counted positions (``num_target_tokens``).
Over the source nothing is predicted (target id 0 with weight 0), as in
Sutskever et al., where the loss is only on the translation.

Batching by length (``batch_pairs``): pairs differ in length, so a batch is
padded to its longest sequence. Sorting the pairs by length before cutting
them into batches keeps the padding small (a batch of 6-word sentences is not
padded to 30). Padding goes on the *right*: the LSTM reads left to right, so
steps after a sequence's end change nothing before it, and their weight 0
removes them from the loss. With an ``rng`` the batches come in a random
order every epoch (and pairs of equal length are mixed), without one the
order is fixed (evaluation).

The built-in corpus and its best perplexity
-------------------------------------------

WMT is a download of gigabytes and days of training; ``make_builtin_parallel``
makes a miniature in a fraction of a second: English sentences from a small
grammar, each with a French translation written by a synchronous grammar::

    the pretty cow will not eat the red apple   ->  la jolie vache ne mangera pas la pomme rouge
    he watched some horses near the river       ->  il a observé des chevaux près du fleuve
    these small dogs do not sleep               ->  ces petits chiens ne dorment pas

It has the things that make translation more than word-for-word lookup:
gender and number agreement of determiners and adjectives (the -> le / la /
les, a -> un / une), adjectives that follow the noun (red car -> voiture
rouge) or precede it (small dog -> petit chien), three tenses conjugated by
number (eats / ate / will eat -> mange / a mangé / mangera, plural mangent /
ont mangé / mangeront), negation around the verb (ne ... pas, n' before a
vowel, pas de before an indefinite object: "il ne mange pas de pomme"),
and contraction of a preposition with the article (de + le -> du,
de + les -> des, à + le -> au, de + un -> d' un).

Its one source of randomness given the English: *synonyms*. 15 of the 52
nouns, adjectives, verbs and prepositions (29%) have two French translations,
chosen at random with known probabilities (car -> voiture .7 / véhicule
.3, near -> près de .7 / à côté de .3, ...). So P(target | source) is known
exactly for every pair, and

    best perplexity = exp( sum over pairs of -log P(target | source)
                           / sum over pairs of (M + 1) )

is the perplexity of the ideal translator, the floor no model can beat in
expectation (``corpus.best_perplexity``). It is far below the target
vocabulary size, but above 1: even a perfect model cannot know which synonym
the reference used, which is also why its BLEU stays below 100.

For that number to be right the grammar guarantees three things, which the
tests check:

- The target distribution is a function of the English *string*: the English
  never hides a choice that the French shows. A noun's gender is a fixed
  property of the French noun (the gender of "car" depends on which synonym
  was drawn: la voiture, le véhicule, and the article follows the draw);
  "they" is always "ils"; no English word has two readings; a prepositional
  phrase at the end always belongs to the sentence. ``parse_english``
  recovers the sentence's structure from the words alone, and
  ``translations`` gives the whole target distribution from the words alone.
- Every synonym choice is between different tokens, and different sequences
  of choices always give different target sentences, so P(target | source)
  is the product of the probabilities of the choices that made it.
- The English is 4 to 12 words long (longer or shorter sentences are
  redrawn; this changes which sentences occur, not any P(target | source)).

The lexicon is kept small on purpose (24 nouns, 8 adjectives, 14 verbs, 6
prepositions: 118 English and 218 French words, so Vs = 119 and Vt = 220
with ``<unk>`` and ``<eos>``): with 3,000 training pairs every French
word form must occur often enough for a small LSTM without attention to learn
it (in a prototype, a larger lexicon made such models fail).

Your own parallel text (``load_parallel``): a folder with six UTF-8 files,
``train.src`` / ``train.tgt``, ``valid.src`` / ``valid.tgt``, ``test.src`` /
``test.tgt``; one sentence per line, words separated by spaces, line i of a
``.tgt`` file the translation of line i of its ``.src`` file. The
vocabularies come from the training files only; valid/test words outside them
become ``<unk>``.

Shapes: N batch (pairs), S source length, M target length, T = S + 1 + M.
"""

from __future__ import annotations

import codecs
import itertools
import math
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from ..choices import SPLITS  # the split names, defined once (also re-exported here)
from .corpus import DataError, decode, vocab_hash

SEP, EOS, UNK = "<sep>", "<eos>", "<unk>"
FILES = {split: (f"{split}.src", f"{split}.tgt") for split in SPLITS}
MAX_SENTENCE_TOKENS = 200        # longer lines in user data are refused: one would dominate a padded batch
MIN_WORDS, MAX_WORDS = 4, 12     # English sentence length of the built-in corpus


class GrammarError(RuntimeError):
    """The grammar breaks a property the best perplexity relies on (a bug, not a data problem)."""


# ---------------------------------------------------------------------------
# The lexicon. Every French entry is a list of synonyms [(probability, forms)];
# a single entry has probability 1 (no choice).
# ---------------------------------------------------------------------------

M, F = "m", "f"
# English (singular, plural), can it be a subject (animate)?, French [(p, (singular, plural, gender))].
NOUNS = [
    (("dog", "dogs"), True, [(1.0, ("chien", "chiens", M))]),
    (("cat", "cats"), True, [(1.0, ("chat", "chats", M))]),
    (("horse", "horses"), True, [(1.0, ("cheval", "chevaux", M))]),
    (("cow", "cows"), True, [(1.0, ("vache", "vaches", F))]),
    (("mouse", "mice"), True, [(1.0, ("souris", "souris", F))]),
    (("boy", "boys"), True, [(1.0, ("garçon", "garçons", M))]),
    (("girl", "girls"), True, [(1.0, ("fille", "filles", F))]),
    (("woman", "women"), True, [(1.0, ("femme", "femmes", F))]),
    (("teacher", "teachers"), True, [(.75, ("professeur", "professeurs", M)), (.25, ("prof", "profs", M))]),
    (("doctor", "doctors"), True, [(.6, ("médecin", "médecins", M)), (.4, ("docteur", "docteurs", M))]),
    (("king", "kings"), True, [(1.0, ("roi", "rois", M))]),
    (("queen", "queens"), True, [(1.0, ("reine", "reines", F))]),
    (("car", "cars"), False, [(.7, ("voiture", "voitures", F)), (.3, ("véhicule", "véhicules", M))]),
    (("bike", "bikes"), False, [(.6, ("vélo", "vélos", M)), (.4, ("bicyclette", "bicyclettes", F))]),
    (("book", "books"), False, [(.75, ("livre", "livres", M)), (.25, ("bouquin", "bouquins", M))]),
    (("letter", "letters"), False, [(1.0, ("lettre", "lettres", F))]),
    (("apple", "apples"), False, [(1.0, ("pomme", "pommes", F))]),
    (("cake", "cakes"), False, [(1.0, ("gâteau", "gâteaux", M))]),
    (("house", "houses"), False, [(.8, ("maison", "maisons", F)), (.2, ("demeure", "demeures", F))]),
    (("garden", "gardens"), False, [(1.0, ("jardin", "jardins", M))]),
    (("city", "cities"), False, [(1.0, ("ville", "villes", F))]),
    (("river", "rivers"), False, [(.7, ("rivière", "rivières", F)), (.3, ("fleuve", "fleuves", M))]),
    (("table", "tables"), False, [(1.0, ("table", "tables", F))]),
    (("boat", "boats"), False, [(.7, ("bateau", "bateaux", M)), (.3, ("navire", "navires", M))]),
]
# No French noun starts with a vowel, so no article or adjective is ever elided (l', cet, bel, vieil).

# English, French [(p, (masc sg, fem sg, masc pl, fem pl))], does the French adjective precede the noun?
ADJECTIVES = [
    ("big", [(.7, ("grand", "grande", "grands", "grandes")), (.3, ("gros", "grosse", "gros", "grosses"))], True),
    ("small", [(1.0, ("petit", "petite", "petits", "petites"))], True),
    ("old", [(1.0, ("vieux", "vieille", "vieux", "vieilles"))], True),
    ("pretty", [(.6, ("joli", "jolie", "jolis", "jolies")), (.4, ("beau", "belle", "beaux", "belles"))], True),
    ("red", [(1.0, ("rouge", "rouge", "rouges", "rouges"))], False),
    ("black", [(1.0, ("noir", "noire", "noirs", "noires"))], False),
    ("white", [(1.0, ("blanc", "blanche", "blancs", "blanches"))], False),
    ("green", [(1.0, ("vert", "verte", "verts", "vertes"))], False),
]

# English (base, 3rd singular, past), transitive?, French [(p, (present sg, present pl, participle,
# future sg, future pl))]. The past is the passé composé: a / ont + participle.
VERBS = [
    (("see", "sees", "saw"), True, [(1.0, ("voit", "voient", "vu", "verra", "verront"))]),
    (("like", "likes", "liked"), True, [(.7, ("aime", "aiment", "aimé", "aimera", "aimeront")),
                                        (.3, ("adore", "adorent", "adoré", "adorera", "adoreront"))]),
    (("eat", "eats", "ate"), True, [(.8, ("mange", "mangent", "mangé", "mangera", "mangeront")),
                                    (.2, ("dévore", "dévorent", "dévoré", "dévorera", "dévoreront"))]),
    (("watch", "watches", "watched"), True, [(.6, ("regarde", "regardent", "regardé", "regardera", "regarderont")),
                                             (.4, ("observe", "observent", "observé", "observera", "observeront"))]),
    (("find", "finds", "found"), True, [(1.0, ("trouve", "trouvent", "trouvé", "trouvera", "trouveront"))]),
    (("take", "takes", "took"), True, [(1.0, ("prend", "prennent", "pris", "prendra", "prendront"))]),
    (("carry", "carries", "carried"), True, [
        (.7, ("porte", "portent", "porté", "portera", "porteront")),
        (.3, ("transporte", "transportent", "transporté", "transportera", "transporteront"))]),
    (("follow", "follows", "followed"), True, [(1.0, ("suit", "suivent", "suivi", "suivra", "suivront"))]),
    (("buy", "buys", "bought"), True, [(1.0, ("achète", "achètent", "acheté", "achètera", "achèteront"))]),
    (("sleep", "sleeps", "slept"), False, [(1.0, ("dort", "dorment", "dormi", "dormira", "dormiront"))]),
    (("sing", "sings", "sang"), False, [(1.0, ("chante", "chantent", "chanté", "chantera", "chanteront"))]),
    (("run", "runs", "ran"), False, [(1.0, ("court", "courent", "couru", "courra", "courront"))]),
    (("laugh", "laughs", "laughed"), False, [(1.0, ("rit", "rient", "ri", "rira", "riront"))]),
    (("wait", "waits", "waited"), False, [(1.0, ("attend", "attendent", "attendu", "attendra", "attendront"))]),
]

# English, French [(p, tokens)]. A French preposition ending in "de" or "à" merges with the article.
PREPOSITIONS: list[tuple[str, list[tuple[float, tuple[str, ...]]]]] = [
    ("in", [(1.0, ("dans",))]),
    ("on", [(1.0, ("sur",))]),
    ("under", [(1.0, ("sous",))]),
    ("with", [(1.0, ("avec",))]),
    ("near", [(.7, ("près", "de")), (.3, ("à", "côté", "de"))]),
    ("at", [(1.0, ("à",))]),
]

# Subject pronouns: English, French, number. "they" is always "ils": English does not show the
# gender, so the French may not depend on it (see the module docstring). No "it", no "you": ambiguous.
PRONOUNS = [("he", "il", "sg"), ("she", "elle", "sg"), ("they", "ils", "pl")]

# French articles by kind: (masc sg, fem sg, plural).
FR_DETERMINERS = {"def": ("le", "la", "les"), "indef": ("un", "une", "des"), "dem": ("ce", "cette", "ces")}
FR_AUX = {"sg": "a", "pl": "ont"}            # avoir, for the passé composé
FR_VOWELS = tuple("aeiouéèêâîôû")

# How often each construction is drawn.
P_PRONOUN = .15                               # the subject is a pronoun (else a noun phrase)
DETERMINER_PROBS = (("def", .5), ("indef", .3), ("dem", .2))
P_PLURAL = .4
P_ADJECTIVE = .3                              # a noun phrase has an adjective
P_SUBJECT_PP = .2                             # the subject noun phrase has a prepositional phrase
TENSE_PROBS = (("present", .4), ("past", .3), ("future", .3))
P_NEGATED = .25
P_FINAL_PP = .4                               # the sentence ends with a prepositional phrase


# ---------------------------------------------------------------------------
# A sentence's structure: what the English says, and all the French depends on.
# ---------------------------------------------------------------------------

class NounPhrase(NamedTuple):
    det: str                  # "def" (the), "indef" (a / some), "dem" (this / these)
    adj: int | None           # index into ADJECTIVES, or None
    noun: int                 # index into NOUNS
    number: str               # "sg" or "pl"


class PrepPhrase(NamedTuple):
    prep: int                 # index into PREPOSITIONS
    np: NounPhrase


class Pronoun(NamedTuple):
    index: int  # type: ignore[assignment]  # index into PRONOUNS (the field hides tuple.index, on purpose)


class Sentence(NamedTuple):
    subject: NounPhrase | Pronoun
    subject_pp: PrepPhrase | None    # "the dog near the river ..." (only after a noun phrase)
    tense: str                       # "present", "past" or "future"
    negated: bool
    verb: int                        # index into VERBS
    obj: NounPhrase | None           # present exactly when the verb is transitive
    pp: PrepPhrase | None            # "... in the garden", belongs to the sentence


def _pick(rng, probs) -> int:
    """Index k drawn with probability probs[k] (one uniform draw: identical on every machine)."""
    cum = list(itertools.accumulate(probs))
    return min(bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)


def _sample_np(rng, nouns) -> NounPhrase:
    det = DETERMINER_PROBS[_pick(rng, [p for _, p in DETERMINER_PROBS])][0]
    number = "pl" if rng.random() < P_PLURAL else "sg"
    adj = int(rng.integers(len(ADJECTIVES))) if rng.random() < P_ADJECTIVE else None
    return NounPhrase(det, adj, nouns[int(rng.integers(len(nouns)))], number)


def _nouns(*names) -> list[int]:
    return [k for k, ((singular, _), _, _) in enumerate(NOUNS) if singular in names]


# Which nouns a verb's object and a preposition's noun are drawn from, so that the sentences make
# some sense ("eat an apple", "in the garden"). Only the sampling uses them: the translation of a
# sentence never depends on them.
ANIMATE = [k for k, (_, animate, _) in enumerate(NOUNS) if animate]
ALL_NOUNS = list(range(len(NOUNS)))
FOOD = _nouns("apple", "cake")
THINGS = _nouns("car", "bike", "book", "letter", "apple", "cake", "table", "boat")
PLACES = _nouns("house", "garden", "city", "river", "table", "car", "boat")
OBJECT_NOUNS = {"eat": FOOD, "take": THINGS, "carry": THINGS, "buy": THINGS}    # other verbs: any noun
PREP_NOUNS = {"with": ANIMATE + [k for k in THINGS if k not in ANIMATE]}        # other prepositions: places


def _sample_pp(rng) -> PrepPhrase:
    prep = int(rng.integers(len(PREPOSITIONS)))
    return PrepPhrase(prep, _sample_np(rng, PREP_NOUNS.get(PREPOSITIONS[prep][0], PLACES)))


def sample_sentence(rng) -> Sentence:
    """One sentence structure drawn from the grammar (any length; the corpus redraws outside 4-12 words)."""
    subject: NounPhrase | Pronoun
    if rng.random() < P_PRONOUN:
        subject, subject_pp = Pronoun(int(rng.integers(len(PRONOUNS)))), None
    else:
        subject = _sample_np(rng, ANIMATE)
        subject_pp = None
        if rng.random() < P_SUBJECT_PP:
            subject_pp = _sample_pp(rng)
    tense = TENSE_PROBS[_pick(rng, [p for _, p in TENSE_PROBS])][0]
    negated = bool(rng.random() < P_NEGATED)
    verb = int(rng.integers(len(VERBS)))
    obj = _sample_np(rng, OBJECT_NOUNS.get(VERBS[verb][0][0], ALL_NOUNS)) if VERBS[verb][1] else None
    pp = None
    if rng.random() < P_FINAL_PP:
        pp = _sample_pp(rng)
    return Sentence(subject, subject_pp, tense, negated, verb, obj, pp)


def _number(subject) -> str:
    return PRONOUNS[subject.index][2] if isinstance(subject, Pronoun) else subject.number


# ---------------------------------------------------------------------------
# English: structure -> words, and back (the parse proves the English hides nothing)
# ---------------------------------------------------------------------------

def _english_np(np_: NounPhrase) -> list[str]:
    sg = np_.number == "sg"
    words = [ADJECTIVES[np_.adj][0]] if np_.adj is not None else []
    words.append(NOUNS[np_.noun][0][0 if sg else 1])
    if np_.det == "def":
        det = "the"
    elif np_.det == "dem":
        det = "this" if sg else "these"
    else:
        det = ("an" if words[0][0] in "aeiou" else "a") if sg else "some"
    return [det, *words]


def english(sent: Sentence) -> list[str]:
    """The English words of a sentence structure."""
    out = ([PRONOUNS[sent.subject.index][0]] if isinstance(sent.subject, Pronoun)
           else _english_np(sent.subject))
    if sent.subject_pp is not None:
        out += [PREPOSITIONS[sent.subject_pp.prep][0], *_english_np(sent.subject_pp.np)]
    base, third, past = VERBS[sent.verb][0]
    sg = _number(sent.subject) == "sg"
    if sent.tense == "present":
        out += (["does" if sg else "do", "not", base] if sent.negated else [third if sg else base])
    elif sent.tense == "past":
        out += (["did", "not", base] if sent.negated else [past])
    else:
        out += (["will", "not", base] if sent.negated else ["will", base])
    if sent.obj is not None:
        out += _english_np(sent.obj)
    if sent.pp is not None:
        out += [PREPOSITIONS[sent.pp.prep][0], *_english_np(sent.pp.np)]
    return out


def _english_lexicon() -> dict[str, tuple]:
    """English word -> its one reading (kind, details); raises GrammarError if a word has two."""
    entries: list[tuple[str, tuple]] = []
    for k, (forms, _, _) in enumerate(NOUNS):
        entries += [(forms[0], ("noun", k, "sg")), (forms[1], ("noun", k, "pl"))]
    entries += [(word, ("adj", k)) for k, (word, _, _) in enumerate(ADJECTIVES)]
    for k, ((base, third, past), _, _) in enumerate(VERBS):
        entries += [(base, ("verb", k, "base")), (third, ("verb", k, "third")), (past, ("verb", k, "past"))]
    entries += [(word, ("prep", k)) for k, (word, _) in enumerate(PREPOSITIONS)]
    entries += [(word, ("pron", k)) for k, (word, _, _) in enumerate(PRONOUNS)]
    entries += [("the", ("det", "def", None)), ("a", ("det", "indef", "sg")), ("an", ("det", "indef", "sg")),
                ("some", ("det", "indef", "pl")), ("this", ("det", "dem", "sg")), ("these", ("det", "dem", "pl"))]
    entries += [(w, ("aux", w)) for w in ("does", "do", "did", "will", "not")]
    lexicon: dict[str, tuple] = {}
    for word, reading in entries:
        if word in lexicon:
            raise GrammarError(f"the English word {word!r} has two readings: {lexicon[word]} and {reading}")
        lexicon[word] = reading
    return lexicon


EN_LEXICON = _english_lexicon()


def parse_english(words) -> Sentence:
    """The structure of an English sentence of the grammar, from its words alone.

    Every English word has one reading and the word order leaves no choice, so
    the structure is a function of the words; ``english(parse_english(w)) == w``
    (checked at the end). Raises DataError for a sentence the grammar cannot make.
    """
    words = words.split() if isinstance(words, str) else list(words)
    pos = 0

    def peek(kind=None):
        if pos >= len(words):
            return None
        reading = EN_LEXICON.get(words[pos])
        if reading is None:
            raise DataError(f"the word {words[pos]!r} is not in the built-in grammar's English")
        return reading if kind is None or reading[0] == kind else None

    def take(kind):
        nonlocal pos
        reading = peek(kind)
        if reading is None:
            got = words[pos] if pos < len(words) else "the end of the sentence"
            raise DataError(f"not a sentence of the built-in grammar: expected a {kind} at word {pos}, "
                            f"got {got!r} in {' '.join(words)!r}")
        pos += 1
        return reading

    def noun_phrase():
        _, det, _ = take("det")
        adj = take("adj")[1] if peek("adj") else None
        _, noun, number = take("noun")
        return NounPhrase(det, adj, noun, number)

    def prep_phrase():
        return PrepPhrase(take("prep")[1], noun_phrase())

    if peek("pron"):
        subject, subject_pp = Pronoun(take("pron")[1]), None
    else:
        subject = noun_phrase()
        subject_pp = prep_phrase() if peek("prep") else None
    if peek("aux"):
        aux = take("aux")[1]
        if aux == "will":
            tense = "future"
            negated = peek("aux") is not None and take("aux")[1] == "not"
        else:
            tense = "past" if aux == "did" else "present"
            negated = take("aux")[1] == "not"
        verb = take("verb")[1]
    else:
        _, verb, form = take("verb")
        tense, negated = ("past" if form == "past" else "present"), False
    obj = noun_phrase() if VERBS[verb][1] else None
    pp = prep_phrase() if pos < len(words) else None
    sent = Sentence(subject, subject_pp, tense, negated, verb, obj, pp)
    if pos != len(words) or english(sent) != words:
        raise DataError(f"not a sentence of the built-in grammar: {' '.join(words)!r}")
    return sent


# ---------------------------------------------------------------------------
# French: structure + synonym choices -> words
# ---------------------------------------------------------------------------

Chooser = Callable[[list], int]   # given a list of synonyms [(p, forms)], returns the index chosen


def _french_np(np_: NounPhrase, choose: Chooser, prep: tuple = (), negated: bool = False) -> list[str]:
    """The French noun phrase, after the preposition ``prep`` (merged with the article if it ends in de / à).

    ``negated``: the object of a negated verb, where un / une / des become de
    ("il ne mange pas de pomme").
    """
    syn = NOUNS[np_.noun][2]
    singular, plural, gender = syn[choose(syn)][1]
    adjective = None
    if np_.adj is not None:
        adj_syn = ADJECTIVES[np_.adj][1]
        forms = adj_syn[choose(adj_syn)][1]
        adjective = forms[(0 if gender == M else 1) + (0 if np_.number == "sg" else 2)]
    sg = np_.number == "sg"
    det = FR_DETERMINERS[np_.det][(0 if gender == M else 1) if sg else 2]
    if negated and np_.det == "indef":
        det = "de"                                         # no French noun or adjective starts with a vowel: no d'
    head = list(prep) + [det]
    if prep and prep[-1] == "de":                          # de + le = du, de + les = des, de + des = de
        merged = {"le": ["du"], "les": ["des"], "des": ["de"], "un": ["d'", "un"], "une": ["d'", "une"]}
        head = list(prep[:-1]) + merged.get(det, ["de", det])
    elif prep and prep[-1] == "à":                         # à + le = au, à + les = aux
        head = list(prep[:-1]) + {"le": ["au"], "les": ["aux"]}.get(det, ["à", det])
    noun = singular if sg else plural
    pre = ADJECTIVES[np_.adj][2] if np_.adj is not None else False
    if adjective is None:
        return head + [noun]
    return head + ([adjective, noun] if pre else [noun, adjective])


def _french_pp(pp: PrepPhrase, choose: Chooser) -> list[str]:
    syn = PREPOSITIONS[pp.prep][1]
    return _french_np(pp.np, choose, prep=syn[choose(syn)][1])


def _ne(word: str) -> str:
    return "n'" if word.startswith(FR_VOWELS) else "ne"


def french(sent: Sentence, choose: Chooser) -> list[str]:
    """The French words of a sentence; ``choose`` picks each synonym, left to right.

    The choices asked for depend only on the structure, never on earlier
    answers, so the list of choices is fixed by the English.
    """
    if isinstance(sent.subject, Pronoun):
        out = [PRONOUNS[sent.subject.index][1]]
    else:
        out = _french_np(sent.subject, choose)
    if sent.subject_pp is not None:
        out += _french_pp(sent.subject_pp, choose)
    number = _number(sent.subject)
    syn = VERBS[sent.verb][2]
    pres_sg, pres_pl, participle, fut_sg, fut_pl = syn[choose(syn)][1]
    sg = number == "sg"
    if sent.tense == "past":
        aux = FR_AUX[number]
        out += (["n'", aux, "pas", participle] if sent.negated else [aux, participle])
    else:
        verb = (pres_sg if sg else pres_pl) if sent.tense == "present" else (fut_sg if sg else fut_pl)
        out += ([_ne(verb), verb, "pas"] if sent.negated else [verb])
    if sent.obj is not None:
        out += _french_np(sent.obj, choose, negated=sent.negated)
    if sent.pp is not None:
        out += _french_pp(sent.pp, choose)
    return out


def sample_french(sent: Sentence, rng) -> tuple[list[str], float]:
    """A French translation drawn at random, and -log P(translation | English) in nats.

    Because different choices always give different sentences (checked by
    ``translations``), the probability of the sentence is the product of the
    probabilities of the choices made.
    """
    nll = 0.0

    def choose(options):
        nonlocal nll
        if len(options) == 1:
            return 0
        k = _pick(rng, [p for p, _ in options])
        nll -= math.log(options[k][0])
        return k

    return french(sent, choose), nll


def translations(english_words) -> dict[tuple, float]:
    """Every French translation of an English sentence and its probability: {words tuple: P}.

    Computed from the English words alone (through ``parse_english``) by
    trying every combination of synonym choices. Raises GrammarError if two
    combinations give the same sentence (P would then not be the product of
    the choices) or if a choice is between identical forms.
    """
    sent = parse_english(english_words)
    slots: list[list] = []

    def ask(options):  # which choices this sentence asks for
        slots.append(options)
        return 0
    french(sent, ask)
    out = {}
    for combo in itertools.product(*(range(len(s)) for s in slots)):
        answers = iter(combo)
        words = tuple(french(sent, lambda options: next(answers)))
        p = math.prod(slots[i][k][0] for i, k in enumerate(combo))
        if words in out:
            raise GrammarError(f"two different synonym choices both give {' '.join(words)!r}")
        out[words] = p
    return out


def target_token_logprobs(english_words, french_words) -> list[float]:
    """log P(word_j | English, words before j) for each French word and the final ``<eos>``.

    The ideal translator's prediction at each position: the probability mass
    of the translations that continue the prefix with that word, divided by
    the mass of those that share the prefix. Their sum is log P(target | source).
    """
    dist = translations(english_words)
    target = tuple(french_words) + (EOS,)
    out = []
    for j, word in enumerate(target):
        prefix = target[:j]
        shared = sum(p for t, p in dist.items() if t[:j] == prefix)
        nxt = sum(p for t, p in dist.items() if t[:j] == prefix and (t + (EOS,))[j] == word)
        if nxt == 0:
            raise DataError(f"{' '.join(french_words)!r} is not a translation of {english_words!r} "
                            "the built-in grammar can make")
        out.append(math.log(nxt / shared))
    return out


def builtin_vocabularies() -> tuple[list[str], list[str]]:
    """The fixed source and target vocabularies (the same for every seed): specials first, then A-Z."""
    en = set(EN_LEXICON)
    fr = set(FR_AUX.values()) | {"pas", "ne", "n'", "du", "des", "de", "d'", "au", "aux", "à"}
    fr |= {w for dets in FR_DETERMINERS.values() for w in dets} | {p[1] for p in PRONOUNS}
    syn: list  # the synonyms [(p, French forms)] of a word: how many forms depends on the kind of word
    for _, _, syn in NOUNS:
        fr |= {w for _, (sg, pl, _) in syn for w in (sg, pl)}
    for _, syn, _ in ADJECTIVES:
        fr |= {w for _, forms in syn for w in forms}
    for _, _, syn in VERBS:
        fr |= {w for _, forms in syn for w in forms}
    for _, syn in PREPOSITIONS:
        fr |= {w for _, tokens in syn for w in tokens}
    return [UNK] + sorted(en), [EOS, UNK] + sorted(fr)


# ---------------------------------------------------------------------------
# The corpus container
# ---------------------------------------------------------------------------

@dataclass(eq=False, repr=False)
class ParallelCorpus:
    """Two vocabularies and three lists of (source, target) id pairs.

    name:            "builtin-fr", or the folder name of user data
    src_vocab:       source words, ``src_vocab[i]`` has id i; holds ``<unk>``
    tgt_vocab:       target words; holds ``<eos>`` and ``<unk>``
    train, valid, test: lists of (src_ids (S,), tgt_ids (M,)) ``np.int64`` pairs;
                     the target WITHOUT ``<eos>`` (``encode_pair`` adds it)
    best_perplexity: {"train", "valid", "test"}: the ideal translator's
                     perplexity on each split, for the built-in corpus; None
                     for user data (nobody knows the true distribution)
    description:     human-readable lines about the data
    nll:             for the built-in corpus, each split's -log P(target |
                     source) per pair in nats, (num_pairs,) float64; else None
    """

    name: str
    src_vocab: list
    tgt_vocab: list
    train: list
    valid: list
    test: list
    best_perplexity: dict | None = None
    description: str = ""
    nll: dict | None = None

    def __post_init__(self):
        self.src_vocab, self.tgt_vocab = list(self.src_vocab), list(self.tgt_vocab)
        for side, vocab, needed in (("source", self.src_vocab, (UNK,)), ("target", self.tgt_vocab, (EOS, UNK))):
            if len(set(vocab)) != len(vocab):
                raise DataError(f"parallel corpus {self.name!r}: the {side} vocabulary lists some word twice")
            missing = [w for w in needed if w not in vocab]
            if missing:
                raise DataError(f"parallel corpus {self.name!r}: the {side} vocabulary lacks {', '.join(missing)}")
        vs, vt = self.sizes
        for split in SPLITS:
            checked = []
            for i, pair in enumerate(getattr(self, split)):
                if len(pair) != 2:
                    raise DataError(f"parallel corpus {self.name!r}: {split}[{i}] is not a (source, target) pair")
                checked.append(tuple(_ids(ids, limit, f"{split}[{i}] {side}", self.name)
                                     for ids, limit, side in zip(pair, (vs, vt), ("source", "target"))))
            setattr(self, split, checked)

    @property
    def sizes(self) -> tuple[int, int]:
        """(Vs, Vt): the source and target vocabulary sizes."""
        return len(self.src_vocab), len(self.tgt_vocab)

    @property
    def sep_id(self) -> int:
        """The separator's input id, Vs (it belongs to neither vocabulary)."""
        return len(self.src_vocab)

    @property
    def input_vocab_size(self) -> int:
        """Vin = Vs + 1 + Vt: the rows of the input embedding (source, separator, shifted target)."""
        return len(self.src_vocab) + 1 + len(self.tgt_vocab)

    @property
    def eos_id(self) -> int:
        return self.tgt_word_to_id[EOS]

    @property
    def src_unk_id(self) -> int:
        return self.src_word_to_id[UNK]

    @property
    def tgt_unk_id(self) -> int:
        return self.tgt_word_to_id[UNK]

    @cached_property
    def src_word_to_id(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.src_vocab)}

    @cached_property
    def tgt_word_to_id(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.tgt_vocab)}

    def encode_src(self, words) -> np.ndarray:
        """Source words (a list, or a string split on whitespace) -> (S,) ids; unknown words -> ``<unk>``.

        Whether an unknown word is acceptable is the caller's decision: compare
        with ``src_unk_id`` to find them.
        """
        return _encode(words, self.src_word_to_id, self.src_unk_id)

    def encode_tgt(self, words) -> np.ndarray:
        """Target words -> (M,) ids, unknown words -> ``<unk>`` (no ``<eos>`` is added)."""
        return _encode(words, self.tgt_word_to_id, self.tgt_unk_id)

    def decode_src(self, ids) -> list[str]:
        return decode(ids, self.src_vocab)

    def decode_tgt(self, ids) -> list[str]:
        """Target ids -> words (``<eos>`` is decoded like any word; cut at it yourself)."""
        return decode(ids, self.tgt_vocab)

    def __repr__(self):
        pairs = ", ".join(f"{s}={len(getattr(self, s)):,}" for s in SPLITS)
        return (f"ParallelCorpus(name={self.name!r}, Vs={len(self.src_vocab)}, Vt={len(self.tgt_vocab)}, "
                f"{pairs} pairs)")


def _ids(ids, limit, what, name) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise DataError(f"parallel corpus {name!r}: {what} must be a 1-D array of integer ids, "
                        f"got shape {arr.shape} and dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= limit):
        raise DataError(f"parallel corpus {name!r}: {what} holds ids outside [0, {limit})")
    return arr.astype(np.int64, copy=False)


def _encode(words, word_to_id, unk_id) -> np.ndarray:
    if isinstance(words, str):
        words = words.split()
    words = list(words)
    return np.fromiter((word_to_id.get(w, unk_id) for w in words), dtype=np.int64, count=len(words))


def parallel_vocab_hash(corpus: ParallelCorpus) -> str:
    """A 16-hex-digit fingerprint of both vocabularies (like ``vocab_hash``; order matters).

    The lengths go in first, so the boundary between the two lists is
    unambiguous whatever the words.
    """
    return vocab_hash([f"source:{len(corpus.src_vocab)}", f"target:{len(corpus.tgt_vocab)}",
                       *corpus.src_vocab, *corpus.tgt_vocab])


def num_target_tokens(pairs) -> int:
    """The number of counted predictions: sum over pairs of (M + 1), the target words and one ``<eos>`` each."""
    return sum(len(tgt) + 1 for _, tgt in pairs)


# ---------------------------------------------------------------------------
# The built-in corpus
# ---------------------------------------------------------------------------

def make_builtin_parallel(seed: int = 0, n_train: int = 3000, n_valid: int = 500,
                          n_test: int = 500) -> ParallelCorpus:
    """The built-in English -> French corpus (name "builtin-fr"), identical for the same arguments everywhere.

    Each split draws from its own generator, ``np.random.SeedSequence(seed).spawn(3)``.
    Valid and test pairs whose English occurs in train are redrawn, so the
    held-out splits measure translation of unseen sentences (a valid sentence
    may also occur in test; the description gives that overlap).
    ``best_perplexity`` holds each split's ideal perplexity and ``nll`` the
    -log P(target | source) of every pair.
    """
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    for split, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise DataError(f"n_{split} must be a positive integer, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    src_vocab, tgt_vocab = builtin_vocabularies()
    src_id = {w: i for i, w in enumerate(src_vocab)}
    tgt_id = {w: i for i, w in enumerate(tgt_vocab)}
    splits, nll, seen = {}, {}, {}
    train_english = set()
    for (split, size), ss in zip(sizes.items(), np.random.SeedSequence(int(seed)).spawn(3)):
        rng = np.random.default_rng(ss)
        pairs: list[tuple[np.ndarray, np.ndarray]]  # (source ids, target ids)
        pairs, losses, sentences = [], [], []
        attempts = 0
        while len(pairs) < size:
            attempts += 1
            if attempts > 100 * size + 1000:
                raise DataError(f"could not draw {size} {split} sentences unseen in train; "
                                "ask for fewer pairs")
            sent = sample_sentence(rng)
            en = english(sent)
            if not MIN_WORDS <= len(en) <= MAX_WORDS:
                continue                        # depends on the English only: P(target | source) unchanged
            key = " ".join(en)
            if split != "train" and key in train_english:
                continue
            fr, loss = sample_french(sent, rng)
            pairs.append((np.array([src_id[w] for w in en], dtype=np.int64),
                          np.array([tgt_id[w] for w in fr], dtype=np.int64)))
            losses.append(loss)
            sentences.append(key)
        if split == "train":
            train_english = set(sentences)
        splits[split], nll[split], seen[split] = pairs, np.array(losses), sentences
    best = {split: math.exp(nll[split].sum() / num_target_tokens(splits[split])) for split in SPLITS}
    overlap = {split: np.mean([s in train_english for s in seen[split]]) for split in ("valid", "test")}
    valid_in_test = np.mean([s in set(seen["test"]) for s in seen["valid"]])
    distinct = len(set(seen["train"])) / len(seen["train"])
    description = (
        f"built-in synthetic English->French corpus (seed {seed}): {n_train:,}/{n_valid:,}/{n_test:,} "
        f"train/valid/test pairs from a synchronous grammar (agreement, adjective order, three tenses, "
        f"ne ... pas, du/au contractions, random target synonyms); Vs={len(src_vocab)}, Vt={len(tgt_vocab)}; "
        f"{distinct:.1%} of train sentences distinct; valid/test English in train: "
        f"{overlap['valid']:.1%}/{overlap['test']:.1%} (redrawn), "
        f"{valid_in_test:.1%} of valid English also in test; best perplexity "
        f"{best['train']:.4f}/{best['valid']:.4f}/{best['test']:.4f} (train/valid/test)")
    return ParallelCorpus(name="builtin-fr", src_vocab=src_vocab, tgt_vocab=tgt_vocab,
                          train=splits["train"], valid=splits["valid"], test=splits["test"],
                          best_perplexity=best, description=description, nll=nll)


# ---------------------------------------------------------------------------
# The model's view: one pair -> (inputs, targets, weights); batches by length
# ---------------------------------------------------------------------------

def encode_pair(src_ids, tgt_ids, Vs: int, eos_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pair -> inputs (T,) int64, targets (T,) int64, weights (T,) float64, T = S + 1 + M.

    inputs:  reversed source (ids in [0, Vs)), the separator Vs, the target ids + Vs + 1
    targets: 0 over the source, then tgt[0], ..., tgt[M-1], eos_id
    weights: 0 over the source, 1 on the M + 1 predictions (see the module docstring's table)
    """
    Vs = _positive_int(Vs, "Vs")
    if isinstance(eos_id, bool) or not isinstance(eos_id, (int, np.integer)) or eos_id < 0:
        raise DataError(f"eos_id must be a non-negative integer, got {eos_id!r}")
    src = _ids(src_ids, Vs, "source", "encode_pair")
    tgt = _ids(tgt_ids, np.iinfo(np.int64).max, "target", "encode_pair")
    S, M = len(src), len(tgt)
    inputs = np.concatenate([src[::-1], [Vs], tgt + (Vs + 1)]).astype(np.int64)
    targets = np.concatenate([np.zeros(S, np.int64), tgt, [eos_id]]).astype(np.int64)
    weights = np.concatenate([np.zeros(S), np.ones(M + 1)])
    return inputs, targets, weights


def batch_pairs(pairs, batch_size: int, Vs: int, eos_id: int, dtype="float32", rng=None) -> list[tuple]:
    """Pairs -> list of (inputs (N, T) int64, targets (N, T) int64, weights (N, T) ``dtype``) batches.

    The pairs are sorted by length T = S + 1 + M and cut into batches of
    ``batch_size`` (the last may be smaller), so a batch holds sequences of
    similar length; each is right-padded to its longest with input 0, target 0
    and weight 0. With ``rng`` (a ``np.random.Generator``) pairs of equal
    length are shuffled before the sort and the batches come in a shuffled
    order, both drawn from ``rng``; without it the order is fixed (shortest
    batches first). ``sum of all weights == num_target_tokens(pairs)``.
    """
    n = _positive_int(batch_size, "batch_size")
    pairs = list(pairs)
    if not pairs:
        raise DataError("no pairs to batch: the split is empty")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise DataError("rng must be a numpy Generator (np.random.default_rng(seed)) or None, "
                        f"got {type(rng).__name__}")
    try:
        wdtype = np.dtype(dtype)
    except TypeError as exc:
        raise DataError(f"dtype {dtype!r} is not a numpy dtype; use 'float32' or 'float64'") from exc
    if not np.issubdtype(wdtype, np.floating):
        raise DataError(f"dtype must be a floating-point type such as 'float32', got {wdtype}")
    encoded = [encode_pair(src, tgt, Vs, eos_id) for src, tgt in pairs]
    lengths = np.array([len(x) for x, _, _ in encoded])
    order = np.arange(len(pairs)) if rng is None else rng.permutation(len(pairs))
    order = order[np.argsort(lengths[order], kind="stable")]     # stable: ties keep the (shuffled) order
    groups = [order[i:i + n] for i in range(0, len(order), n)]
    if rng is not None:
        groups = [groups[k] for k in rng.permutation(len(groups))]
    batches = []
    for group in groups:
        T = int(lengths[group].max())
        inputs = np.zeros((len(group), T), np.int64)
        targets = np.zeros((len(group), T), np.int64)
        weights = np.zeros((len(group), T), wdtype)
        for row, i in enumerate(group.tolist()):
            x, y, w = encoded[i]
            inputs[row, :len(x)], targets[row, :len(y)], weights[row, :len(w)] = x, y, w
        batches.append((inputs, targets, weights))
    return batches


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------
# Your own parallel text
# ---------------------------------------------------------------------------

_LAYOUT = ("a parallel corpus folder holds six UTF-8 files: train.src, train.tgt, valid.src, valid.tgt, "
           "test.src, test.tgt (one sentence per line; line i of X.tgt translates line i of X.src)")


def read_sentences(path) -> list[list[str]]:
    """The sentences of one file: one list of words per line, checked (see ``load_parallel``)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}; " + _LAYOUT) from exc
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]      # a mark some editors write, not a word of the first line
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path} is UTF-16 text; save it as UTF-8 (one sentence per line)")
    if b"\0" in raw:
        raise DataError(f"{path} contains NUL bytes: it is a binary file, not text with one sentence per line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte {exc.start} cannot be decoded); "
                        "convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8") from exc
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()                           # the newline that ends the last line
    if not lines:
        raise DataError(f"{path} is empty: it must hold one sentence per line")
    sentences = []
    for number, line in enumerate(lines, start=1):
        words = line.split()
        if not words:
            raise DataError(f"{path}, line {number} is empty: every line must hold one sentence; "
                            "delete the line here and the same line of the matching .src/.tgt file")
        if len(words) > MAX_SENTENCE_TOKENS:
            raise DataError(f"{path}, line {number} has {len(words)} words, more than the limit of "
                            f"{MAX_SENTENCE_TOKENS}: split the sentence or drop the pair")
        reserved = [w for w in (SEP, EOS) if w in words]
        if reserved:
            raise DataError(f"{path}, line {number}: {reserved[0]} is reserved (the separator and the "
                            "end-of-sentence mark are added automatically); remove it")
        sentences.append(words)
    return sentences


def _build_vocab(sentences, specials) -> list[str]:
    """Specials first, then the words by decreasing frequency, ties alphabetical (as for PTB)."""
    counts = Counter(w for words in sentences for w in words)
    return list(specials) + sorted((w for w in counts if w not in specials), key=lambda w: (-counts[w], w))


def load_parallel(data_dir) -> ParallelCorpus:
    """Read a folder of parallel text (see the module docstring): train/valid/test .src and .tgt files.

    Refused, with a message that says what to fix: a missing file, a file
    that is not UTF-8, an empty line, a line longer than
    ``MAX_SENTENCE_TOKENS`` words, a word ``<eos>`` or ``<sep>``, and a .src
    and .tgt file with different numbers of lines. A UTF-8 byte-order mark is
    skipped. Vocabularies come from the training files; valid/test words not
    in them become ``<unk>`` (the description counts them).
    """
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder; {_LAYOUT}")
    missing = [name for names in FILES.values() for name in names if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)}; {_LAYOUT}")
    text = {}
    for split, (src_name, tgt_name) in FILES.items():
        src, tgt = read_sentences(folder / src_name), read_sentences(folder / tgt_name)
        if len(src) != len(tgt):
            raise DataError(f"{folder}: {src_name} has {len(src):,} lines but {tgt_name} has {len(tgt):,}; "
                            "line i of the .tgt file must be the translation of line i of the .src file")
        text[split] = (src, tgt)
    src_vocab = _build_vocab(text["train"][0], (UNK,))
    tgt_vocab = _build_vocab(text["train"][1], (EOS, UNK))
    src_id = {w: i for i, w in enumerate(src_vocab)}
    tgt_id = {w: i for i, w in enumerate(tgt_vocab)}
    splits, notes = {}, []
    for split, (src, tgt) in text.items():
        splits[split] = [(_encode(s, src_id, src_id[UNK]), _encode(t, tgt_id, tgt_id[UNK])) for s, t in zip(src, tgt)]
        if split != "train":
            unk_src = sum(w not in src_id for s in src for w in s)
            unk_tgt = sum(w not in tgt_id for t in tgt for w in t)
            notes.append(f"{split}: {unk_src:,} source and {unk_tgt:,} target words not in the training "
                         "vocabulary mapped to <unk>")
    counts = "/".join(f"{len(splits[s]):,}" for s in SPLITS)
    description = (f"parallel text from {folder}: {counts} train/valid/test pairs, Vs={len(src_vocab):,}, "
                   f"Vt={len(tgt_vocab):,} (from train); " + "; ".join(notes))
    name = folder.resolve().name or str(folder)
    return ParallelCorpus(name=name, src_vocab=src_vocab, tgt_vocab=tgt_vocab, train=splits["train"],
                          valid=splits["valid"], test=splits["test"], best_perplexity=None,
                          description=description)
