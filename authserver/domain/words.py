"""Word lists for human-friendly client ids (``<adjective>-<noun>-<5 digits>``)."""

ADJECTIVES = (
    "amber", "ancient", "arctic", "autumn", "bold", "brave", "bright", "brisk", "calm",
    "clever", "cobalt", "cosmic", "crimson", "crisp", "curious", "daring", "dawn", "eager",
    "early", "electric", "emerald", "fancy", "fearless", "fierce", "frosty", "gentle", "gilded",
    "glad", "golden", "graceful", "grand", "happy", "hidden", "honest", "humble", "icy",
    "indigo", "jolly", "keen", "kind", "lively", "lucky", "lunar", "mellow", "merry", "mighty",
    "misty", "modest", "noble", "polar", "proud", "quick", "quiet", "rapid", "royal", "rustic",
    "scarlet", "shiny", "silent", "silver", "smooth", "solar", "steady", "swift", "tidy",
    "velvet", "vivid", "wandering", "warm", "wild", "wise", "witty", "young", "zesty",
)

NOUNS = (
    "anchor", "aspen", "badger", "beacon", "bison", "breeze", "brook", "canyon", "cedar",
    "comet", "condor", "coral", "cove", "crane", "creek", "dolphin", "dune", "eagle", "ember",
    "falcon", "fern", "fjord", "forest", "fox", "galaxy", "garden", "glacier", "harbor", "hawk",
    "heron", "island", "jaguar", "lagoon", "lantern", "lark", "lynx", "maple", "meadow", "mesa",
    "meteor", "moose", "nebula", "oak", "ocean", "orca", "otter", "panda", "pebble", "pine",
    "planet", "prairie", "quartz", "raven", "reef", "river", "robin", "sparrow", "spruce",
    "summit", "thunder", "tiger", "tundra", "valley", "walrus", "willow", "wolf", "zephyr",
)
