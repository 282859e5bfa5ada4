"""Word pools and vectorised builders for the synthetic texts.

Everything here works on whole arrays (numpy + pyarrow.compute) so a chunk of a
million items costs a few dozen kernel calls rather than a million Python calls.
The personal data planted in texts (addresses, phone numbers, IBANs, card
numbers, @mentions) is what a downstream PII filter has to find, so the IBANs
carry correct ISO 13616 check digits and the card numbers pass the Luhn test:
a detector that validates them must not be able to dismiss them as noise.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# --------------------------------------------------------------------------- names

FIRST_NAMES: tuple[str, ...] = (
    "anna", "lukas", "emma", "noah", "mia", "liam", "sofia", "jan", "lea", "finn",
    "marie", "paul", "julia", "felix", "sara", "max", "laura", "tom", "eva", "ben",
    "chloe", "louis", "camille", "hugo", "ines", "jules", "manon", "leo", "zoe", "arthur",
    "daan", "sanne", "bram", "fleur", "joris", "lotte", "sem", "noor", "thijs", "femke",
    "lucia", "pablo", "carmen", "diego", "elena", "javier", "marta", "alvaro", "nuria", "ines",
    "giulia", "marco", "chiara", "luca", "francesca", "matteo", "alessia", "davide", "sara", "andrea",
    "zofia", "jakub", "maja", "kacper", "hanna", "szymon", "oliwia", "antoni", "lena", "igor",
    "joao", "beatriz", "tiago", "mariana", "rafael", "ana", "pedro", "carolina", "miguel", "rita",
    "elsa", "erik", "astrid", "oskar", "ingrid", "nils", "freja", "axel", "saga", "linnea",
    "siobhan", "cian", "aoife", "oisin", "niamh", "james", "olivia", "jack", "amelia", "harry",
    "ethan", "ava", "mason", "isabella", "logan", "harper", "lucas", "ella", "aiden", "grace",
    "aarav", "priya", "rohan", "ananya", "vikram", "diya", "arjun", "kavya", "ishaan", "meera",
    "haruto", "yui", "sota", "hina", "ren", "aoi", "yuto", "sakura", "kaito", "mei",
    "chidi", "amara", "tunde", "ngozi", "emeka", "zainab", "femi", "adaeze", "kemi", "obinna",
    "mateo", "valentina", "santiago", "camila", "sebastian", "ximena", "emiliano", "renata", "ana", "jose",
    "kerstin", "jurgen", "sabine", "dieter", "ute", "klaus", "birgit", "stefan", "petra", "uwe",
)
LAST_NAMES: tuple[str, ...] = (
    "muller", "schmidt", "dubois", "martin", "jansen", "devries", "garcia", "lopez", "rossi", "bianchi",
    "nowak", "kowalski", "silva", "santos", "andersson", "johansson", "murphy", "kelly", "smith", "jones",
    "brown", "wilson", "sharma", "patel", "tanaka", "suzuki", "okafor", "adeyemi", "hernandez", "moreau",
    "bakker", "visser", "fischer", "weber", "ferrari", "esposito", "wojcik", "costa", "nilsson", "walsh",
)
MAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.org", "example.net", "mail.example", "post.example")

# --------------------------------------------------------------------------- sentences
# One pool per language. Languages without a pool fall back to English, which is
# what a platform sees anyway: people do not always write in their UI language.

SENTENCES: dict[str, tuple[str, ...]] = {
    "en": (
        "What a beautiful morning at the beach.", "Finally finished the marathon, my legs are gone!",
        "Anyone know a good pizza place near the station?", "Happy birthday to my amazing sister!",
        "Can't believe it's already Friday.", "New recipe tonight: lemon pasta with garlic.",
        "The concert last night was unreal.", "Our dog learned a new trick today 🐶",
        "Traffic on the motorway is terrible again.", "Reading a great book about the history of maps.",
        "Who's coming to the barbecue on Saturday?", "Just moved into the new flat, boxes everywhere.",
        "Thanks everyone for the kind messages ❤️", "Rainy Sunday, perfect for a movie marathon.",
        "The kids built a sandcastle taller than themselves.", "Coffee first, then we talk.",
        "Proud of the team, what a season!", "Looking for recommendations for a weekend in Lisbon.",
        "Garden is finally blooming 🌷", "Does anyone still have the photos from the wedding?",
        "See you all at the reunion next month.", "My train was cancelled, of course.",
    ),
    "de": (
        "Was für ein schöner Morgen am See.", "Endlich Feierabend, jetzt erst mal ein Bier.",
        "Kennt jemand eine gute Werkstatt in der Nähe?", "Alles Gute zum Geburtstag, Mama!",
        "Der Zug hat schon wieder 40 Minuten Verspätung.", "Heute gibt es Käsespätzle, wer kommt vorbei?",
        "Das Konzert gestern war der Wahnsinn.", "Unser Hund hat heute das Sofa erobert 🐕",
        "Wir sind endlich umgezogen, überall Kartons.", "Danke für die vielen lieben Nachrichten ❤️",
        "Regnerischer Sonntag, perfekt für Filme.", "Die Kinder haben eine riesige Sandburg gebaut.",
        "Erst Kaffee, dann reden wir.", "Stolz auf die Mannschaft, was für eine Saison!",
        "Suche Tipps für ein Wochenende in Hamburg.", "Der Garten blüht endlich 🌷",
        "Hat noch jemand die Fotos von der Hochzeit?", "Wir sehen uns beim Klassentreffen.",
        "Grillen am Samstag, wer ist dabei?", "Neues Fahrrad, erste Tour gleich morgen.",
    ),
    "fr": (
        "Quelle belle matinée au bord de la mer.", "Enfin fini le semi-marathon, je ne sens plus mes jambes !",
        "Quelqu'un connaît une bonne boulangerie près de la gare ?", "Joyeux anniversaire à ma sœur préférée !",
        "Déjà vendredi, la semaine est passée trop vite.", "Ce soir : gratin dauphinois maison.",
        "Le concert d'hier soir était incroyable.", "Notre chat a encore volé le canapé 🐱",
        "On a enfin emménagé, des cartons partout.", "Merci pour tous vos gentils messages ❤️",
        "Dimanche pluvieux, parfait pour un film.", "Les enfants ont construit un château de sable géant.",
        "D'abord un café, ensuite on discute.", "Fiers de l'équipe, quelle saison !",
        "Des idées pour un week-end à Lyon ?", "Le jardin est enfin en fleurs 🌷",
        "Quelqu'un a encore les photos du mariage ?", "On se voit à la fête des voisins.",
        "Mon train est encore annulé, évidemment.", "Premier pique-nique de l'année au parc.",
    ),
    "nl": (
        "Wat een mooie ochtend aan zee.", "Eindelijk de halve marathon uitgelopen, mijn benen zijn op!",
        "Weet iemand een goede pizzeria bij het station?", "Gefeliciteerd met je verjaardag, zus!",
        "Het is alweer vrijdag, waar blijft de tijd.", "Vanavond stamppot, wie eet er mee?",
        "Het concert gisteravond was geweldig.", "Onze hond heeft vandaag een nieuw trucje geleerd 🐶",
        "Eindelijk verhuisd, overal dozen.", "Bedankt voor alle lieve berichten ❤️",
        "Regenachtige zondag, perfect voor een film.", "De kinderen hebben een enorm zandkasteel gebouwd.",
        "Eerst koffie, dan praten we verder.", "Trots op het team, wat een seizoen!",
        "Tips voor een weekendje Antwerpen?", "De tuin staat eindelijk in bloei 🌷",
        "Heeft iemand de foto's van de bruiloft nog?", "Tot ziens op de reünie volgende maand.",
        "Mijn trein is weer uitgevallen, natuurlijk.", "Fietsen door de polder, heerlijk weer.",
    ),
    "es": (
        "Qué mañana tan bonita en la playa.", "¡Por fin terminé la media maratón!",
        "¿Alguien conoce un buen bar de tapas cerca de la estación?", "¡Feliz cumpleaños, hermana!",
        "Ya es viernes, qué rápido pasa la semana.", "Esta noche tortilla de patatas casera.",
        "El concierto de anoche fue increíble.", "Nuestro perro aprendió un truco nuevo hoy 🐶",
        "Por fin nos mudamos, cajas por todas partes.", "Gracias a todos por los mensajes tan bonitos ❤️",
        "Domingo lluvioso, perfecto para ver pelis.", "Los niños hicieron un castillo de arena enorme.",
        "Primero café, luego hablamos.", "¡Orgullosos del equipo, qué temporada!",
        "¿Recomendaciones para un fin de semana en Sevilla?", "El jardín por fin está en flor 🌷",
        "¿Alguien tiene todavía las fotos de la boda?", "Nos vemos en la reunión del mes que viene.",
    ),
    "it": (
        "Che bella mattina al mare.", "Finalmente finita la mezza maratona!",
        "Qualcuno conosce una buona pizzeria vicino alla stazione?", "Buon compleanno, sorellina!",
        "È già venerdì, la settimana è volata.", "Stasera carbonara fatta in casa.",
        "Il concerto di ieri sera è stato pazzesco.", "Il nostro cane ha imparato un nuovo trucco 🐶",
        "Finalmente trasferiti, scatoloni ovunque.", "Grazie a tutti per i messaggi ❤️",
        "Domenica piovosa, perfetta per un film.", "I bambini hanno costruito un castello di sabbia enorme.",
        "Prima il caffè, poi parliamo.", "Orgogliosi della squadra, che stagione!",
        "Consigli per un weekend a Bologna?", "Il giardino è finalmente fiorito 🌷",
        "Qualcuno ha ancora le foto del matrimonio?", "Ci vediamo alla rimpatriata il mese prossimo.",
    ),
    "pl": (
        "Piękny poranek nad morzem.", "W końcu ukończyłem półmaraton!",
        "Zna ktoś dobrą pizzerię koło dworca?", "Wszystkiego najlepszego, siostrzyczko!",
        "Już piątek, ten tydzień minął błyskawicznie.", "Dziś na obiad pierogi ruskie.",
        "Wczorajszy koncert był niesamowity.", "Nasz pies nauczył się nowej sztuczki 🐶",
        "W końcu się przeprowadziliśmy, wszędzie kartony.", "Dziękuję wszystkim za miłe wiadomości ❤️",
        "Deszczowa niedziela, idealna na filmy.", "Dzieci zbudowały ogromny zamek z piasku.",
        "Najpierw kawa, potem rozmowa.", "Dumni z drużyny, co za sezon!",
        "Macie pomysł na weekend w Krakowie?", "Ogród wreszcie kwitnie 🌷",
    ),
    "pt": (
        "Que manhã bonita na praia.", "Finalmente terminei a meia maratona!",
        "Alguém conhece uma boa pastelaria perto da estação?", "Feliz aniversário, mana!",
        "Já é sexta-feira, a semana voou.", "Hoje ao jantar há bacalhau com natas.",
        "O concerto de ontem foi incrível.", "O nosso cão aprendeu um truque novo hoje 🐶",
        "Finalmente mudámos de casa, caixas por todo o lado.", "Obrigado a todos pelas mensagens ❤️",
        "Domingo chuvoso, perfeito para filmes.", "As crianças fizeram um castelo de areia enorme.",
        "Primeiro café, depois conversamos.", "Orgulho da equipa, que temporada!",
        "Sugestões para um fim de semana no Porto?", "O jardim finalmente floriu 🌷",
        "Bora pra praia no sábado, galera?", "Saudade de vocês, quando a gente se vê?",
    ),
    "sv": (
        "Vilken fin morgon vid havet.", "Äntligen klar med halvmaran!",
        "Vet någon en bra pizzeria nära stationen?", "Grattis på födelsedagen, syrran!",
        "Redan fredag, veckan flög förbi.", "Ikväll blir det köttbullar och potatismos.",
        "Konserten igår var helt otrolig.", "Hunden har lärt sig ett nytt trick 🐶",
        "Äntligen inflyttade, kartonger överallt.", "Tack för alla fina meddelanden ❤️",
        "Regnig söndag, perfekt för film.", "Först kaffe, sen pratar vi.",
    ),
    "ja": (
        "今日は海がとてもきれいでした。", "やっとハーフマラソンを完走しました！",
        "駅の近くにおいしいラーメン屋さんありますか？", "お誕生日おめでとう！",
        "もう金曜日、一週間が早い。", "昨日のライブは最高でした。",
        "うちの犬が新しい芸を覚えました 🐶", "引っ越し完了、段ボールだらけ。",
        "雨の日曜日は映画日和。", "まずはコーヒー、それから話そう。",
    ),
    "hi": (
        "आज समुद्र किनारे बहुत सुंदर सुबह थी।", "जन्मदिन की बहुत बहुत शुभकामनाएं!",
        "कल रात का कॉन्सर्ट शानदार था।", "आखिरकार नए घर में आ गए।",
        "सबका धन्यवाद ❤️", "पहले चाय, फिर बात करेंगे।",
        "स्टेशन के पास कोई अच्छा ढाबा पता है?", "बारिश का रविवार, फिल्म देखने का दिन।",
    ),
}
TEXT_LANGS: tuple[str, ...] = tuple(SENTENCES)

# Lead-ins for planted personal data: (email, phone, iban, card).
PII_LABELS: dict[str, tuple[str, str, str, str]] = {
    "en": ("Write to me at", "Call me on", "Please transfer to", "My card number is"),
    "de": ("Schreibt mir an", "Ruft mich an unter", "Bitte überweisen an", "Kartennummer"),
    "fr": ("Écrivez-moi à", "Appelez-moi au", "Virement sur", "Numéro de carte"),
    "nl": ("Mail me op", "Bel me op", "Maak het over naar", "Kaartnummer"),
    "es": ("Escríbeme a", "Llámame al", "Transferencia a", "Número de tarjeta"),
    "it": ("Scrivetemi a", "Chiamatemi al", "Bonifico su", "Numero carta"),
    "pl": ("Napisz do mnie na", "Zadzwoń pod", "Przelew na konto", "Numer karty"),
    "pt": ("Escreva para", "Liga-me para", "Transferência para", "Número do cartão"),
    "sv": ("Mejla mig på", "Ring mig på", "Överför till", "Kortnummer"),
    "ja": ("連絡先:", "電話:", "振込先:", "カード番号:"),
    "hi": ("मुझे लिखें:", "कॉल करें:", "खाता:", "कार्ड नंबर:"),
}

# (prefix, number of digits after it). International and national spellings,
# because that is how people actually type them.
PHONE_FORMATS: tuple[tuple[str, int], ...] = (
    ("+31 6 ", 8), ("+49 30 ", 7), ("+49 151 ", 8), ("+33 6 ", 8), ("+44 7700 ", 6),
    ("+34 612 ", 6), ("+39 347 ", 7), ("+48 601 ", 6), ("+1 415 555 ", 4), ("+46 70 ", 7),
    ("+351 912 ", 6), ("+41 79 ", 7), ("+43 664 ", 7), ("+32 470 ", 6), ("+353 87 ", 7),
    ("+91 98 ", 8), ("+55 11 9", 8), ("06-", 8), ("0176 ", 8), ("07700 ", 6),
)

# (country, bank part of the BBAN, width of the account part). Check digits are computed.
IBAN_FORMATS: tuple[tuple[str, str, int], ...] = (
    ("NL", "ABNA", 10), ("NL", "RABO", 10), ("NL", "INGB", 10), ("NL", "TRIO", 10),
    ("DE", "37040044", 10), ("DE", "10070000", 10), ("DE", "50010517", 10), ("DE", "70150000", 10),
    ("GB", "NWBK601613", 8), ("GB", "BARC200000", 8),
    ("ES", "21000418", 12), ("BE", "539", 9), ("FR", "3000600001", 13), ("IT", "X0542811101", 12),
)

# --------------------------------------------------------------------------- ledger notes

OBJECTION_NOTES: tuple[str, ...] = (
    "I do not want my posts or photos used to train AI.",
    "My photos include my children; I object to any AI training.",
    "Ik wil niet dat mijn berichten voor AI worden gebruikt.",
    "Ich widerspreche der Nutzung meiner Daten für KI-Training (Art. 21 DSGVO).",
    "Je m'oppose à l'utilisation de mes données pour l'IA.",
    "Me opongo al uso de mis datos para entrenar IA.",
    "Mi oppongo all'uso dei miei dati per l'addestramento dell'IA.",
    "Sprzeciwiam się wykorzystaniu moich danych do trenowania AI.",
    "I am a professional photographer; my pictures are copyrighted.",
    "Art. 21 GDPR objection, no reason required.",
)
WITHDRAWAL_NOTES: tuple[str, ...] = (
    "Changed my mind.",
    "Objection filed by mistake.",
    "Happy to contribute after reading the FAQ.",
)
# An administrator must state compelling grounds when rejecting an objection
# (CONTRACT §2); each note ends with a ticket reference so it is auditable.
REJECTION_NOTES: tuple[str, ...] = (
    "Public figure: posts are press statements",
    "Government account: content is official public communication",
    "Registered company page: posts are corporate marketing, not personal data",
    "Objection submitted by a third party without authority to act for the account holder",
    "Content already published under an open licence by the account holder",
    "Verified news outlet: posts are journalistic publications",
)
ERASURE_NOTES: tuple[str, ...] = (
    "Art. 17 GDPR request",
    "Account holder deceased; request by next of kin",
    "Request received by post",
)


# --------------------------------------------------------------------------- helpers

def digits_str(values: np.ndarray, width: int) -> pa.Array:
    """Zero-padded decimal strings, the building block of every identifier."""
    return pc.utf8_lpad(pc.cast(pa.array(values, type=pa.int64()), pa.string()), width=width, padding="0")


def join(*parts: pa.Array | str, sep: str | pa.Array = "") -> pa.Array:
    """Element-wise concatenation that drops null parts (so optional pieces vanish cleanly)."""
    return pc.binary_join_element_wise(*parts, sep, null_handling="skip")


def scatter(values: pa.Array, positions: np.ndarray, length: int) -> pa.Array:
    """Place `values` at `positions` of a length-`length` array, null elsewhere.

    Building optional pieces (an IBAN in 1% of texts) only for the rows that need
    them and scattering afterwards keeps the string work proportional to the hits.
    """
    idx = np.full(length, len(values), dtype=np.int64)
    idx[positions] = np.arange(len(values), dtype=np.int64)
    padded = pa.concat_arrays([values.cast(pa.string()), pa.nulls(1, pa.string())])
    return pc.take(padded, pa.array(idx))


def pick(pool: tuple[str, ...] | list[str], rng: np.random.Generator, n: int) -> pa.Array:
    """n uniform draws from a string pool, as an Arrow array."""
    return pc.take(pa.array(pool, pa.string()), pa.array(rng.integers(0, len(pool), n)))


def json_string(values: pa.Array) -> pa.Array:
    """JSON-encode strings (quotes included); nulls become the literal `null`.

    Our texts contain no control characters, so escaping backslash and quote is enough.
    """
    esc = pc.replace_substring(values, "\\", "\\\\")
    esc = pc.replace_substring(esc, '"', '\\"')
    quoted = pc.binary_join_element_wise('"', esc, '"', "", null_handling="emit_null")
    return pc.fill_null(quoted, "null")


# --------------------------------------------------------------------------- PII builders

def emails(rng: np.random.Generator, n: int) -> pa.Array:
    """Addresses that look personal (first.last42@...) on reserved example domains."""
    num = rng.integers(1, 100, n)
    num_s = pc.if_else(pa.array(rng.random(n) < 0.5), pc.cast(pa.array(num), pa.string()), pa.nulls(n, pa.string()))
    local = join(pick(FIRST_NAMES, rng, n), ".", pick(LAST_NAMES, rng, n), num_s)
    return join(local, "@", pick(MAIL_DOMAINS, rng, n))


def phones(rng: np.random.Generator, n: int) -> pa.Array:
    fmt = rng.integers(0, len(PHONE_FORMATS), n)
    widths = np.array([w for _, w in PHONE_FORMATS], dtype=np.int64)[fmt]
    number = rng.integers(10 ** (widths - 1), 10**widths)
    prefix = pc.take(pa.array([p for p, _ in PHONE_FORMATS]), pa.array(fmt))
    return join(prefix, pc.cast(pa.array(number), pa.string()))


def _iban_digits(s: str) -> str:
    return "".join(str(int(ch, 36)) for ch in s)


def ibans(rng: np.random.Generator, n: int) -> pa.Array:
    """IBANs with correct mod-97 check digits; ~30% printed in groups of four."""
    fmt = rng.integers(0, len(IBAN_FORMATS), n)
    country = np.array([c for c, _, _ in IBAN_FORMATS])
    bank = [b for _, b, _ in IBAN_FORMATS]
    width = np.array([w for _, _, w in IBAN_FORMATS], dtype=np.int64)
    # Per format: bank part mod 97, 10**width mod 97, and the trailing "<country digits>00".
    bank_mod = np.array([int(_iban_digits(b)) % 97 for b in bank], dtype=np.int64)
    scale = np.array([pow(10, int(w), 97) for w in width], dtype=np.int64)
    tail_s = [_iban_digits(c) + "00" for c, _, _ in IBAN_FORMATS]
    tail = np.array([int(t) for t in tail_s], dtype=np.int64)
    tail_scale = np.array([pow(10, len(t), 97) for t in tail_s], dtype=np.int64)

    w = width[fmt]
    account = rng.integers(0, 10**w)
    r = (bank_mod[fmt] * scale[fmt] + account % 97) % 97
    r = (r * tail_scale[fmt] + tail[fmt]) % 97
    check = 98 - r
    acct_s = pc.cast(pa.array(account), pa.string())
    # Zero-pad per row to the format's width (widths differ between formats).
    acct_padded = pc.utf8_lpad(acct_s, width=int(width.max()), padding="0")
    acct_fixed = _slice_rows(acct_padded, int(width.max()) - w)
    compact = join(
        pc.take(pa.array(country), pa.array(fmt)),
        digits_str(check, 2),
        pc.take(pa.array(bank), pa.array(fmt)),
        acct_fixed,
    )
    spaced_rows = rng.random(n) < 0.3
    groups = [pc.utf8_slice_codeunits(compact, k, k + 4) for k in range(0, 36, 4)]
    spaced = pc.utf8_rtrim(join(*groups, sep=" "), characters=" ")
    return pc.if_else(pa.array(spaced_rows), spaced, compact)


def _slice_rows(values: pa.Array, starts: np.ndarray) -> pa.Array:
    """Per-row utf8 slice from `starts` to the end (pyarrow only slices by constant)."""
    out = pa.nulls(len(values), pa.string())
    for s in np.unique(starts):
        rows = starts == s
        sliced = pc.utf8_slice_codeunits(values, int(s))
        out = pc.if_else(pa.array(rows), sliced, out)
    return out


def cards(rng: np.random.Generator, n: int) -> pa.Array:
    """Luhn-valid 16-digit Visa/Mastercard-like numbers, spaced or compact."""
    d = rng.integers(0, 10, (n, 16))
    visa = rng.random(n) < 0.6
    d[:, 0] = np.where(visa, 4, 5)
    d[:, 1] = np.where(visa, d[:, 1], rng.integers(1, 6, n))
    # Luhn: double every second digit from the right, excluding the check digit.
    body = d[:, :15].copy()
    dbl = body[:, 0::2] * 2
    body[:, 0::2] = np.where(dbl > 9, dbl - 9, dbl)
    d[:, 15] = (10 - body.sum(axis=1) % 10) % 10
    weights = np.array([1000, 100, 10, 1])
    groups = [digits_str(d[:, k : k + 4] @ weights, 4) for k in range(0, 16, 4)]
    sep = pc.if_else(pa.array(rng.random(n) < 0.7), " ", "")
    return join(*groups, sep=sep)
