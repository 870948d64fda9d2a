"""What a Costa Rican cardholder's mailbox is made of: merchants, people, free texts."""

from typing import NamedTuple


class Merchant(NamedTuple):
    """A card acceptor as the networks describe it, with what people spend there."""

    name: str
    city: str  # as the card network prints it: a town, or a phone or web address online
    country: str  # ISO 3166 code
    category: str  # the MCC description Promerica shows as "Tipo de Comercio"
    crc: tuple[int, int] | None = None  # range of a typical ticket in colones
    usd: tuple[int, int] | None = None  # range of a typical ticket in dollars
    usd_share: float = 0.0  # how often a merchant with both ranges charges dollars
    prices: tuple[int, ...] = ()  # fixed prices in cents: colones in CR, dollars abroad
    round_to: int = 5  # colones: cash registers round; fuel pumps stop on round amounts
    weight: float = 1.0  # how often the cardholder shops there


MERCHANTS: tuple[Merchant, ...] = (
    Merchant("AUTOMERCADO ESCAZU", "ESCAZU", "CR", "GROCERY STORES", (4_000, 95_000), weight=3),
    Merchant(
        "AUTOMERCADO LOS YOSES", "SAN JOSE", "CR", "GROCERY STORES", (4_000, 90_000), weight=2
    ),
    Merchant("PRICESMART ZAPOTE", "SAN JOSE", "CR", "WHOLESALE CLUBS", (15_000, 230_000), weight=2),
    Merchant("PRICESMART ESCAZU", "ESCAZU", "CR", "WHOLESALE CLUBS", (15_000, 230_000)),
    Merchant(
        "MAS X MENOS CURRIDABAT", "CURRIDABAT", "CR", "GROCERY STORES", (3_000, 70_000), weight=2.5
    ),
    Merchant("MAS X MENOS SABANA", "SAN JOSE", "CR", "GROCERY STORES", (3_000, 70_000)),
    Merchant(
        "WALMART SAN SEBASTIAN", "SAN JOSE", "CR", "DISCOUNT STORES", (5_000, 120_000), weight=2
    ),
    Merchant("WALMART HEREDIA", "HEREDIA", "CR", "DISCOUNT STORES", (5_000, 120_000)),
    Merchant("PALI DESAMPARADOS", "DESAMPARADOS", "CR", "GROCERY STORES", (2_000, 35_000)),
    Merchant(
        "FRESH MARKET SANTA ANA",
        "SANTA ANA",
        "CR",
        "CONVENIENCE STORES",
        (1_200, 18_000),
        weight=1.5,
    ),
    Merchant("MEGASUPER TIBAS", "TIBAS", "CR", "GROCERY STORES", (2_500, 45_000)),
    Merchant("MINISUPER LA AMISTAD", "MONTES DE OCA", "CR", "GROCERY STORES", (800, 12_000)),
    Merchant("FARMACIA FISCHEL", "SAN JOSE", "CR", "DRUG STORES", (2_000, 60_000), weight=1.5),
    Merchant("FARMACIA LA BOMBA", "HEREDIA", "CR", "DRUG STORES", (1_500, 35_000)),
    Merchant("FARMACIA SUCRE", "ALAJUELA", "CR", "DRUG STORES", (1_500, 40_000)),
    Merchant(
        "GASOLINERA LA GALERA",
        "CURRIDABAT",
        "CR",
        "SERVICE STATIONS",
        (10_000, 45_000),
        round_to=1_000,
        weight=2,
    ),
    Merchant(
        "GASOLINERA UNO SAN PEDRO",
        "SAN PEDRO",
        "CR",
        "SERVICE STATIONS",
        (10_000, 45_000),
        round_to=1_000,
        weight=1.5,
    ),
    Merchant(
        "GASOLINERA DELTA ESCAZU",
        "ESCAZU",
        "CR",
        "SERVICE STATIONS",
        (10_000, 45_000),
        round_to=1_000,
    ),
    Merchant(
        "SERVICENTRO LA PRIMAVERA",
        "ALAJUELA",
        "CR",
        "SERVICE STATIONS",
        (8_000, 40_000),
        round_to=500,
    ),
    Merchant("DLC*UBER EATS", "SAN JOSE", "CR", "EATING PLACES", (4_500, 28_000), weight=3),
    Merchant("UBER *TRIP", "SAN JOSE", "CR", "TAXICABS/LIMOUSINES", (1_400, 14_000), weight=3.5),
    Merchant("RAPPI COSTA RICA", "SAN JOSE", "CR", "EATING PLACES", (5_000, 30_000)),
    Merchant("STARBUCKS MULTIPLAZA", "ESCAZU", "CR", "EATING PLACES", (2_500, 12_000), weight=1.5),
    Merchant(
        "MCDONALDS PASEO COLON",
        "SAN JOSE",
        "CR",
        "FAST FOOD RESTAURANTS",
        (2_500, 14_000),
        weight=1.5,
    ),
    Merchant("KFC LINCOLN PLAZA", "MORAVIA", "CR", "FAST FOOD RESTAURANTS", (3_000, 18_000)),
    Merchant("PIZZA HUT SABANA", "SAN JOSE", "CR", "FAST FOOD RESTAURANTS", (7_000, 28_000)),
    Merchant("TACO BELL TERRAMALL", "CARTAGO", "CR", "FAST FOOD RESTAURANTS", (3_000, 14_000)),
    Merchant("SODA LA TICA", "SAN JOSE", "CR", "EATING PLACES", (2_500, 9_000)),
    Merchant("CAFE BRITT", "HEREDIA", "CR", "EATING PLACES", (3_000, 35_000)),
    Merchant("HELADOS POPS", "CARTAGO", "CR", "EATING PLACES", (1_500, 8_000)),
    Merchant("PANADERIA SAN JORGE", "HEREDIA", "CR", "BAKERIES", (1_000, 9_000)),
    Merchant("RESTAURANTE TIN JO", "SAN JOSE", "CR", "EATING PLACES", (15_000, 85_000)),
    Merchant("NOVILLO ALEGRE ESCAZU", "ESCAZU", "CR", "EATING PLACES", (15_000, 70_000)),
    Merchant("SPOON CURRIDABAT", "CURRIDABAT", "CR", "EATING PLACES", (6_000, 30_000)),
    Merchant(
        "CINEPOLIS LINCOLN PLAZA",
        "MORAVIA",
        "CR",
        "MOTION PICTURE THEATERS",
        (4_500, 22_000),
        weight=0.7,
    ),
    Merchant("PARQUEO MULTIPLAZA", "ESCAZU", "CR", "PARKING LOTS", (800, 4_000), round_to=100),
    Merchant(
        "ICE PREPAGO WEB",
        "SAN JOSE",
        "CR",
        "TELECOMMUNICATION SERVICES",
        prices=(100_000, 200_000, 300_000, 500_000, 1_000_000),
    ),
    Merchant(
        "CABLETICA",
        "SAN JOSE",
        "CR",
        "CABLE SERVICES",
        prices=(2_450_000, 2_890_000, 3_590_000),
        weight=0.5,
    ),
    Merchant(
        "CORREOS DE COSTA RICA", "SAN JOSE", "CR", "POSTAL SERVICES", (1_500, 18_000), weight=0.5
    ),
    Merchant("FERRETERIA EPA TIBAS", "TIBAS", "CR", "HARDWARE STORES", (3_000, 180_000)),
    Merchant("PEQUEÑO MUNDO", "HEREDIA", "CR", "DISCOUNT STORES", (2_000, 60_000)),
    Merchant(
        "LIBRERIA INTERNACIONAL", "SAN PEDRO", "CR", "BOOK STORES", (5_000, 45_000), weight=0.7
    ),
    Merchant(
        "TIENDA EL GALLO",
        "ALAJUELA",
        "CR",
        "HOUSEHOLD APPLIANCE STORES",
        (15_000, 450_000),
        weight=0.5,
    ),
    Merchant(
        "H&M CITY MALL", "ALAJUELA", "CR", "FAMILY CLOTHING STORES", (9_000, 95_000), weight=0.6
    ),
    Merchant(
        "SMART FIT ESCAZU",
        "ESCAZU",
        "CR",
        "HEALTH CLUBS",
        prices=(1_690_000, 1_990_000),
        weight=0.5,
    ),
    Merchant(
        "HOSPITAL CLINICA BIBLICA", "SAN JOSE", "CR", "HOSPITALS", (25_000, 350_000), weight=0.3
    ),
    Merchant("HOTEL TABACON ARENAL", "LA FORTUNA", "CR", "LODGING", usd=(150, 650), weight=0.2),
    Merchant(
        "DUTY FREE SJO",
        "ALAJUELA",
        "CR",
        "DUTY FREE STORES",
        (8_000, 150_000),
        usd=(15, 300),
        usd_share=0.7,
        weight=0.2,
    ),
    # Online merchants bill in dollars and print a web or phone address as the city.
    Merchant("NETFLIX.COM", "866-579-7172", "US", "DIGITAL GOODS", prices=(699, 1099, 1599)),
    Merchant("SPOTIFY", "STOCKHOLM", "SE", "DIGITAL GOODS", prices=(599, 799, 1099)),
    Merchant(
        "AMAZON MKTPLACE PMTS", "AMZN.COM/BILL", "US", "CATALOG MERCHANTS", usd=(6, 260), weight=2
    ),
    Merchant(
        "APPLE.COM/BILL", "ITUNES.COM", "IE", "DIGITAL GOODS", prices=(99, 299, 499, 999, 1299)
    ),
    Merchant(
        "GOOGLE *YOUTUBE PREMIUM",
        "G.CO/HELPPAY#",
        "US",
        "DIGITAL GOODS",
        prices=(799, 1199),
        weight=0.6,
    ),
    Merchant(
        "OPENAI *CHATGPT SUBSCR",
        "SAN FRANCISCO",
        "US",
        "COMPUTER SOFTWARE STORES",
        prices=(2000,),
        weight=0.5,
    ),
    Merchant("DISNEY PLUS", "BURBANK", "US", "DIGITAL GOODS", prices=(799, 1399), weight=0.5),
    Merchant("STEAM PURCHASE", "BELLEVUE", "US", "DIGITAL GOODS", usd=(4, 60), weight=0.4),
    Merchant("TEMU.COM", "BOSTON", "US", "CATALOG MERCHANTS", usd=(5, 90)),
    Merchant("AIRBNB * HMQ2X5KD8T", "SAN FRANCISCO", "US", "LODGING", usd=(60, 650), weight=0.2),
)

# Merchants where a refund or a zero-amount card check is what really happens.
REFUND_MERCHANTS = tuple(m for m in MERCHANTS if not m.prices and m.category != "PARKING LOTS")
CARD_CHECK_MERCHANTS = tuple(
    m for m in MERCHANTS if m.country != "CR" or m.name in ("UBER *TRIP", "DLC*UBER EATS")
) + tuple(m for m in MERCHANTS if m.category == "LODGING")

COUNTRIES = {  # code: (BAC and DAVIbank spelling, Promerica's upper-case spelling)
    "CR": ("Costa Rica", "COSTA RICA"),
    "US": ("Estados Unidos", "ESTADOS UNIDOS"),
    "SE": ("Suecia", "SUECIA"),
    "IE": ("Irlanda", "IRLANDA"),
}
# Banco Nacional prints the network's three-letter country code after the city.
ALPHA3 = {"CR": "CRI", "US": "USA", "SE": "SWE", "IE": "IRL"}

# Card holders: given names, surnames, the name they use in a From or To header.
HOLDERS: tuple[tuple[str, str, str], ...] = (
    ("Juan Carlos", "Pérez Mora", "Juan Pérez"),
    ("María Fernanda", "Solís Rojas", "María Solís"),
    ("Andrés", "Jiménez Vargas", "Andrés Jiménez"),
    ("Sofía", "Rojas Quesada", "Sofía Rojas"),
    ("José Pablo", "Araya Castro", "José Pablo Araya"),
    ("Daniela", "Chaves Ulate", "Daniela Chaves"),
    ("Luis Diego", "Mora Brenes", "Luis Diego Mora"),
    ("Valeria", "Hernández Solano", "Valeria Hernández"),
)

# What people write as the reason of a transfer; BAC keeps whatever the sender typed.
TRANSFER_CONCEPTS = (
    "alquiler",
    "pago_mentoria",
    "cuota_condominio",
    "ahorro",
    "pago clases",
    "prestamo",
    "regalo cumple",
    "mantenimiento",
    "colegio",
    "pago_tarjeta_mama",
    "servicios",
    "varios",
)
SINPE_CONCEPTS = (
    "almuerzo",
    "cena",
    "pago",
    "alquiler",
    "regalo",
    "gasolina",
    "uber",
    "reintegro",
    "salario",
    "vaquita",
    "pizza",
    "SINPE MOVIL",
)

# Promotional images and legal text the banks wrap around their data.
BAC_BANNERS = (
    ("BANNER PROMOCIONAL", "https://img.example.cr/bac/banner-promocional.png"),
    ("Tasa 0% hasta 12 meses en comercios afiliados", "https://img.example.cr/bac/tasa0.png"),
    ("Acumulá el doble de puntos este fin de semana", "https://img.example.cr/bac/puntos.png"),
    (
        "Hasta USD 500 de reembolso en compras internacionales",
        "https://img.example.cr/bac/reembolso.png",
    ),
    ("Pagá con tu celular: BAC Wallet", "https://img.example.cr/bac/wallet.png"),
)
BAC_FOOTERS = (
    "Este comprobante de su transacción hace referencia al artículo 18 y 19 del reglamento "
    "del sistema de tarjetas de pago establecidos por el BCCR.",
    "Si usted no realizó esta transacción, comuníquese de inmediato al 2295-9797 las 24 "
    "horas del día.",
    "BAC Credomatic nunca le solicitará su PIN, contraseñas o códigos por correo electrónico.",
)
BAC_PROMOS = (
    (
        "¡Black Friday! Hasta 20% de reembolso",
        "Aproveche nuestra promoción Black Friday.\nMonto mínimo: CRC 10,000.00\n",
    ),
    (
        "Tasa 0% hasta 12 meses en tiendas afiliadas",
        "Compre hoy y pague en cuotas sin intereses.\nCompras desde CRC 50,000.00 en comercios "
        "participantes.\n",
    ),
    (
        "Acumulá el doble de puntos este fin de semana",
        "Del viernes al domingo, cada compra con su tarjeta acumula el doble de puntos.\n",
    ),
    (
        "Su tarjeta, ahora en BAC Wallet",
        "Pague con su celular en cualquier datáfono sin contacto.\nActívela desde la App BAC.\n",
    ),
    (
        "Seguro de viaje gratis con su tarjeta",
        "Al comprar sus boletos con su tarjeta, viaje protegido hasta por USD 50,000.\n",
    ),
)
BN_PROMOS = (  # subject, text: amounts in the text, the subject says what it is
    (
        "Aproveche tasa 0% a 6 meses con sus tarjetas BN",
        "Compre en comercios afiliados y pague a 6 meses sin intereses.\n"
        "Aplica en compras desde CRC 50,000.00 con tarjetas de crédito BN.\n",
    ),
    (
        "Descuentos de hasta 25% en restaurantes con BN",
        "Todos los jueves, hasta 25% de descuento pagando con su tarjeta BN.\n"
        "Tope de reintegro: CRC 15,000.00 por mes.\n",
    ),
    (
        "Participe en el sorteo de un viaje con BN Móvil",
        "Cada pago de servicios en BN Móvil le da una acción para el sorteo.\n",
    ),
)
# Who a SINPE Móvil goes to: (name as the bank prints it, the recipient's bank).
SINPE_PAYEES = (
    ("maria jimenez solano", "Banco Nacional de Costa Rica"),
    ("CARLOS ARAYA MONGE", "Banco de Costa Rica"),
    ("soda el pueblo", "Banco Popular y de Desarrollo Comunal"),
    ("Laura Quesada Rojas", "BAC San José"),
    ("ESTEBAN VILLALOBOS CHACON", "Banco Nacional de Costa Rica"),
    ("taller hermanos mora", "Banco Promerica"),
)
FRIENDS = (
    ("Amigo", "amigo@gmail.com"),
    ("Carolina Vargas", "caro.vargas@gmail.com"),
    ("Mamá", "marta.mora@hotmail.com"),
    ("Esteban Quesada", "equesada@yahoo.com"),
)
FRIEND_NOTES = (
    ("almuerzo?", "Hola, te debo los CRC 4,500.00 del almuerzo."),
    ("Re: alquiler", "Ya te hice el SINPE del alquiler, avisame si te llegó."),
    ("Fotos del paseo", "Te paso las fotos del paseo a Monteverde."),
    ("vaquita cumple Ana", "Somos 8, salen CRC 6,000.00 por cabeza."),
)
