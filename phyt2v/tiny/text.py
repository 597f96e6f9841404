"""Text pieces of the tiny models: a word-level vocabulary of common English and physics words, tokenizers in the
T5 / UMT5 / Llama / CLIP conventions built from it, a tiny T5 encoder, and a seeded start for every random weight."""

from __future__ import annotations

# A small word-level vocabulary: common English plus the words physics prompts use.
# Anything else maps to the unknown token.
WORDS = """
a an the this that these those it its is are was were be been being has have had do does did
not no yes and or but if then so as of in on at to from by with without into onto over under
up down out off through across along around between against after before during while when
where which who what how why all each every some any many much more most few one two three
i you he she we they me him her us them my your his our their there here very also just only
than too again still now once other same such own new old big small large little long short
tall wide thin thick heavy light hot cold warm wet dry soft hard smooth rough full empty high
low fast slow quick slowly quickly gently suddenly red blue green white black yellow brown
clear bright dark round flat sharp glass metal wood wooden plastic paper rubber stone steel
ice water milk juice coffee tea oil honey sand mud snow rain smoke fire steam air wind wave
ball cup mug bottle jar bowl plate glass pot pan spoon fork knife spatula brush sponge towel
table floor ground wall window door car wheel tire road box bag rope string chain spring
cake batter dough bread egg soup sauce shampoo soap foam bubble bubbles drop drops liquid
solid object objects surface edge side top bottom center front back left right inside outside
man woman person hand hands finger fingers arm leg foot head child dog cat bird fish tree
leaf leaves flower grass rock hill river lake sea pool kitchen room street table chair
falls fall falling fell drops dropped rolls roll rolling bounces bounce bouncing slides
slide sliding flows flow flowing pours pour pouring splashes splash spills spill melts melt
melting breaks break breaking shatters shatter cracks crack bends bend bending stretches
stretch squeezes squeeze presses press pushes push pulls pull lifts lift throws throw
catches catch hits hit strikes collides collide touches touch rests rest sits sit stands
stand moves move moving turns turn spins spin rotates rotate swings swing floats float
sinks sink rises rise fills fill empties stirs stir scoops scoop mixes mix cuts cut tears
tear folds fold burns burn freezes freeze boils boil drips drip leaks leak sprays spray
lathers lather wipes wipe washes wash scrubs scrub shakes shake waves blows blow walks walk
runs run jumps jump holds hold grabs grab places place puts put takes take makes make shows
video scene camera frame frames shot view motion movement contact deformation shape force
gravity friction speed direction weight pressure physics physical law laws rule rules follow
follows obey obeys real realistic natural description describe describes entail entails
caption prompt image images first second third last end begin begins starts ends
""".split()


def make_vocab(words: list[str], specials: list[str]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for w in specials + words:
        vocab.setdefault(w, len(vocab))
    return vocab


def seeded(seed: int = 0):
    import torch

    torch.manual_seed(seed)


def word_tokenizer(specials: list[str], *, bos: str | None = None, eos: str | None = None,
                    pad: str = "<pad>", unk: str = "<unk>", max_length: int = 512, added: tuple[str, ...] = ()):
    """A lowercasing word-level tokenizer over WORDS: serves the T5/UMT5 (eos appended), Llama (bos
    prepended) and CLIP (both) slots of the video pipelines."""
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = make_vocab(sorted(set(WORDS)) + list(".,!?;:'\"-()"), specials)
    tk = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    tk.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    single = " ".join(x for x in (bos, "$A", eos) if x)
    tk.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[(t, vocab[t]) for t in (bos, eos) if t])
    if added:
        tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in added])
    kw = {k: v for k, v in (("bos_token", bos), ("eos_token", eos)) if v}
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token=pad, unk_token=unk, model_max_length=max_length,
                                   **kw)


def t5_tokenizer(max_length: int = 512):
    """Word-level, lowercasing, T5 conventions (pad 0, eos 1 appended, unk 2)."""
    return word_tokenizer(["<pad>", "</s>", "<unk>"], eos="</s>", max_length=max_length)


def t5_encoder(tokenizer, umt5: bool = False):
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    cfg_cls, model_cls = (UMT5Config, UMT5EncoderModel) if umt5 else (T5Config, T5EncoderModel)
    seeded(0)
    return model_cls(cfg_cls(vocab_size=len(tokenizer), d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
                             relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                             decoder_start_token_id=0))
