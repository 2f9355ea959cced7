"""Class names and colours of the supported label sets (Cityscapes, COCO-Stuff, ADE20K, the synthetic scenes).

``palette(n)`` is a deterministic colour table for label sets without official colours (the usual
bit-interleaved VOC-style colour map). ``class_info(name, label_nc)`` picks names and colours by dataset.
"""

from __future__ import annotations


def _words(text: str) -> list[str]:
    """Whitespace separated names; ``_`` stands for a space inside a name."""
    return [w.replace("_", " ") for w in text.split()]


# ---------------------------------------------------------------------------- Cityscapes (labelIds 0..33, -1 -> 34)
CITYSCAPES: list[tuple[str, tuple[int, int, int]]] = [
    ("unlabeled", (0, 0, 0)),
    ("ego vehicle", (0, 0, 0)),
    ("rectification border", (0, 0, 0)),
    ("out of roi", (0, 0, 0)),
    ("static", (0, 0, 0)),
    ("dynamic", (111, 74, 0)),
    ("ground", (81, 0, 81)),
    ("road", (128, 64, 128)),
    ("sidewalk", (244, 35, 232)),
    ("parking", (250, 170, 160)),
    ("rail track", (230, 150, 140)),
    ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)),
    ("fence", (190, 153, 153)),
    ("guard rail", (180, 165, 180)),
    ("bridge", (150, 100, 100)),
    ("tunnel", (150, 120, 90)),
    ("pole", (153, 153, 153)),
    ("polegroup", (153, 153, 153)),
    ("traffic light", (250, 170, 30)),
    ("traffic sign", (220, 220, 0)),
    ("vegetation", (107, 142, 35)),
    ("terrain", (152, 251, 152)),
    ("sky", (70, 130, 180)),
    ("person", (220, 20, 60)),
    ("rider", (255, 0, 0)),
    ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)),
    ("bus", (0, 60, 100)),
    ("caravan", (0, 0, 90)),
    ("trailer", (0, 0, 110)),
    ("train", (0, 80, 100)),
    ("motorcycle", (0, 0, 230)),
    ("bicycle", (119, 11, 32)),
    ("license plate", (0, 0, 142)),  # labelId -1, stored as the 35th class (pix2pixHD label_nc 35)
]
CITYSCAPES_NAMES = [n for n, _ in CITYSCAPES]
CITYSCAPES_COLORS = [list(c) for _, c in CITYSCAPES]
CITYSCAPES_THINGS = list(range(24, 34))  # person .. bicycle carry instance ids (class*1000+k)

# ---------------------------------------------------------------------------- COCO-Stuff (182 ids, 255 = unlabeled)
COCO_STUFF_NAMES = _words(
    """person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant street_sign
stop_sign parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe hat backpack umbrella shoe
eye_glasses handbag tie suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard
surfboard tennis_racket bottle plate wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot
hot_dog pizza donut cake chair couch potted_plant bed mirror dining_table window desk toilet door tv laptop mouse
remote keyboard cell_phone microwave oven toaster sink refrigerator blender book clock vase scissors teddy_bear
hair_drier toothbrush hair_brush banner blanket branch bridge building-other bush cabinet cage cardboard carpet
ceiling-other ceiling-tile cloth clothes clouds counter cupboard curtain desk-stuff dirt door-stuff fence floor-marble
floor-other floor-stone floor-tile floor-wood flower fog food-other fruit furniture-other grass gravel ground-other
hill house leaves light mat metal mirror-stuff moss mountain mud napkin net paper pavement pillow plant-other plastic
platform playingfield railing railroad river road rock roof rug salad sand sea shelf sky-other skyscraper snow
solid-other stairs stone straw structural-other table tent textile-other towel tree vegetable wall-brick
wall-concrete wall-other wall-panel wall-stone wall-tile wall-wood water-other waterdrops window-blind window-other
wood"""
)

# ---------------------------------------------------------------------------- ADE20K SceneParsing (150 classes)
ADE20K_NAMES = _words(
    """wall building sky floor tree ceiling road bed windowpane grass cabinet sidewalk person earth door table
mountain plant curtain chair car water painting sofa shelf house sea mirror rug field armchair seat fence desk rock
wardrobe lamp bathtub railing cushion base box column signboard chest_of_drawers counter sand sink skyscraper
fireplace refrigerator grandstand path stairs runway case pool_table pillow screen_door stairway river bridge bookcase
blind coffee_table toilet flower book hill bench countertop stove palm kitchen_island computer swivel_chair boat bar
arcade_machine hovel bus towel light truck tower chandelier awning streetlight booth television_receiver airplane
dirt_track apparel pole land bannister escalator ottoman bottle buffet poster stage van ship fountain conveyer_belt
canopy washer plaything swimming_pool stool barrel basket waterfall tent bag minibike cradle oven ball food step tank
trade_name microwave pot animal bicycle lake dishwasher screen blanket sculpture hood sconce vase traffic_light tray
ashcan fan pier crt_screen plate monitor bulletin_board shower radiator glass clock flag"""
)

# ---------------------------------------------------------------------------- synthetic street scenes
SYNTH_CLASSES = ["sky", "road", "sidewalk", "building", "vegetation", "car", "person", "pole"]
SYNTH_COLORS = [
    (70, 130, 180),
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (107, 142, 35),
    (0, 0, 142),
    (220, 20, 60),
    (153, 153, 153),
]
SYNTH_THINGS = [5, 6]  # car and person carry instance ids class*1000+k
SYNTH_STYLES = {
    "sky": ["clear day", "sunset", "overcast"],
    "road": ["asphalt", "cobblestone"],
    "sidewalk": ["concrete slabs", "red pavers"],
    "building": ["brick", "concrete", "glass"],
    "vegetation": ["dark green", "light green", "autumn"],
    "car": ["red", "blue", "white", "yellow", "black", "silver"],
    "person": ["red shirt", "blue shirt", "green shirt", "white shirt", "black shirt"],
}


def palette(n: int) -> list[list[int]]:
    """A deterministic, well spread colour table of ``n`` RGB colours (VOC-style bit interleaving)."""
    colors = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
            if c == 0:
                break
        colors.append([r, g, b])
    return colors


def generic_names(n: int) -> list[str]:
    return [f"class {i}" for i in range(n)]


KNOWN = {
    "cityscapes": (CITYSCAPES_NAMES, CITYSCAPES_COLORS, CITYSCAPES_THINGS),
    "coco": (COCO_STUFF_NAMES, None, list(range(91))),
    "ade20k": (ADE20K_NAMES, None, []),
    "synth": (SYNTH_CLASSES, [list(c) for c in SYNTH_COLORS], SYNTH_THINGS),
}


def class_info(dataset: str, label_nc: int) -> dict:
    """``{"names", "colors", "things"}`` for a known label set when its size matches ``label_nc``, else generic."""
    names, colors, things = KNOWN.get(dataset, (None, None, []))
    if names is None or len(names) != label_nc:
        return {"names": generic_names(label_nc), "colors": palette(label_nc), "things": []}
    return {"names": list(names), "colors": colors or palette(label_nc), "things": list(things)}
