"""lang: the layer-spec language, from text to concrete layers.

values (channel counts, α, resolutions) -> kinds (what a layer is) -> opbase (how an op is
declared) -> ops (the op table: every op, its grammar, building and cost rules) -> spec
(statements, the Spec, building it into Layers, its canonical text) -> parse (text to Spec)
-> load (built-in specs, files) -> identity (a network by its canonical text). specs/ holds
the built-in networks.
"""
