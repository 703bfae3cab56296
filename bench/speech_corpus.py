"""Known text in several languages, for espeak-ng: short everyday sentences (1–3 s spoken) and
utterances built from them, up to Whisper's 30 s. Used by bench/final_windows.py and
bench/session_language.py (and a test of the session language)."""

from __future__ import annotations

# fmt: off
SHORT: dict[str, tuple[str, ...]] = {
    "cs": (
        "Dobré ráno, jak se máš?", "Dnes je krásný den.", "Kde je nádraží?",
        "Mám rád českou kuchyni.", "Zítra pojedu do Prahy.", "Můj bratr hraje fotbal.",
        "Kolik to stojí?", "Venku prší už tři dny.", "Potřebuji koupit chleba.",
        "Kniha leží na stole.", "Naše kočka spí celý den.", "Večer půjdeme do kina.",
        "Děkuji za pomoc.", "To je velmi zajímavé.", "Moje sestra studuje medicínu.",
        "Vlak přijede v osm hodin.", "Rád bych si objednal kávu.", "Les je plný stromů.",
        "Učitel mluví pomalu.", "Na zahradě rostou růže.",
    ),
    "de": (
        "Guten Morgen, wie geht es dir?", "Heute ist ein schöner Tag.", "Wo ist der Bahnhof?",
        "Ich trinke gern Kaffee.", "Morgen fahre ich nach Berlin.", "Mein Bruder spielt Fußball.",
        "Wie viel kostet das?", "Draußen regnet es seit Tagen.", "Ich muss noch Brot kaufen.",
        "Das Buch liegt auf dem Tisch.", "Unsere Katze schläft den ganzen Tag.",
        "Am Abend gehen wir ins Kino.", "Vielen Dank für die Hilfe.", "Das ist sehr interessant.",
        "Meine Schwester studiert Medizin.", "Der Zug kommt um acht Uhr.",
        "Ich hätte gern ein Glas Wasser.", "Der Wald ist voller Bäume.",
        "Der Lehrer spricht langsam.", "Im Garten wachsen Rosen.",
    ),
    "es": (
        "Buenos días, ¿cómo estás?", "Hoy hace un día precioso.", "¿Dónde está la estación?",
        "Me gusta mucho el café.", "Mañana voy a Madrid.", "Mi hermano juega al fútbol.",
        "¿Cuánto cuesta esto?", "Llueve desde hace tres días.", "Tengo que comprar pan.",
        "El libro está sobre la mesa.", "Nuestro gato duerme todo el día.",
        "Esta noche vamos al cine.", "Gracias por tu ayuda.", "Eso es muy interesante.",
        "Mi hermana estudia medicina.", "El tren llega a las ocho.",
        "Quisiera un vaso de agua.", "El bosque está lleno de árboles.",
        "El profesor habla despacio.", "En el jardín crecen rosas.",
    ),
    "pl": (
        "Dzień dobry, jak się masz?", "Dzisiaj jest piękny dzień.", "Gdzie jest dworzec?",
        "Lubię pić kawę.", "Jutro jadę do Krakowa.", "Mój brat gra w piłkę.",
        "Ile to kosztuje?", "Od trzech dni pada deszcz.", "Muszę kupić chleb.",
        "Książka leży na stole.", "Nasz kot śpi cały dzień.", "Wieczorem idziemy do kina.",
        "Dziękuję za pomoc.", "To jest bardzo ciekawe.", "Moja siostra studiuje medycynę.",
        "Pociąg przyjeżdża o ósmej.", "Poproszę szklankę wody.", "Las jest pełen drzew.",
        "Nauczyciel mówi powoli.", "W ogrodzie rosną róże.",
    ),
    "fr": (
        "Bonjour, comment allez-vous?", "Aujourd'hui il fait très beau.", "Où est la gare?",
        "J'aime beaucoup le café.", "Demain je vais à Paris.", "Mon frère joue au football.",
        "Combien ça coûte?", "Il pleut depuis trois jours.", "Je dois acheter du pain.",
        "Le livre est sur la table.", "Notre chat dort toute la journée.",
        "Ce soir nous allons au cinéma.",
    ),
    "it": (
        "Buongiorno, come stai?", "Oggi è una bella giornata.", "Dov'è la stazione?",
        "Mi piace molto il caffè.", "Domani vado a Roma.", "Mio fratello gioca a calcio.",
        "Quanto costa questo?", "Piove da tre giorni.", "Devo comprare il pane.",
        "Il libro è sul tavolo.", "Il nostro gatto dorme tutto il giorno.",
        "Stasera andiamo al cinema.",
    ),
    "en": (
        "Good morning, how are you?", "Today is a beautiful day.", "Where is the station?",
        "I really like coffee.", "Tomorrow I am going to London.", "My brother plays football.",
        "How much does this cost?", "It has been raining for three days.",
        "I have to buy some bread.", "The book is on the table.",
        "Our cat sleeps all day long.", "Tonight we are going to the cinema.",
    ),
}
# fmt: on
