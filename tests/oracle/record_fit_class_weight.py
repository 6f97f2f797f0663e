"""Record what Keras 2.3.1 computes with ``class_weight`` in ``fit``.

Run with the Keras 2.3.1 Python (``nox -s oracle``, or by hand)::

    python3.7 tests/oracle/record_fit_class_weight.py [outdir]

The snippets use the set-up of ``record_class_weight.py`` (a model of two outputs, a
sigmoid and a softmax head, with fixed weights, compiled with SGD; or its first output
alone) and call ``model.fit(..., class_weight=...)`` on fixed arrays, unshuffled. Each
leaves a dict ``result``: the history (each loss, per epoch; ``val_`` ones with a
``validation_split``), every weight after training and the predictions. This script runs
each under Keras 2.3.1 and writes ``cases.json`` into ``tests/goldens/fit_class_weight/``
(or ``outdir``). ``tests/test_class_weights_fit.py`` migrates each snippet with
``kutils migrate`` (which rewrites the calls into ``fit(model, ...)``), runs it on Keras
3 and compares.
"""

from __future__ import annotations

from _snippets import record
from record_class_weight import SETUP

FIT_SETUP = (
    SETUP
    + """

def fitted(model, history):
    result = {key: np.asarray(values, "float32") for key, values in history.history.items()}
    result["weights"] = np.concatenate([w.reshape(-1) for w in model.get_weights()])
    result["predict"] = np.concatenate([p.reshape(-1) for p in outputs_of(model.predict(x))])
    return result
"""
)

SNIPPETS = {
    # The semi-supervised GAN's discriminator trained with fit: one dict per output.
    "list_per_output": """
model = build()
history = model.fit(x, [valid, labels], batch_size=3, epochs=2, shuffle=False, verbose=0,
                    class_weight=[cw_valid, cw_label])
result = fitted(model, history)
""",
    # A dict by output name (the other output not weighted), sample weights multiplied
    # in, and a validation_split, whose samples keep their weights in the val_ losses.
    "dict_sample_weight_validation_split": """
model = build()
sw = np.linspace(0.5, 2.0, 8)
history = model.fit(x, {"valid": valid, "label": labels}, batch_size=4, epochs=2,
                    shuffle=False, verbose=0, validation_split=0.25,
                    class_weight={"label": cw_label}, sample_weight=[sw, sw[::-1]])
result = fitted(model, history)
""",
    # Keras 2's positions: class_weight is fit's tenth argument.
    "positional": """
model = build()
history = model.fit(x, [valid, labels], 4, 2, 0, None, 0.0, None, False,
                    [cw_valid, cw_label])
result = fitted(model, history)
""",
    # One output: one dict, and sample weights multiplied (Keras 3 alone refuses both).
    "one_output_dict_and_sample_weight": """
model = build(outputs=1)
history = model.fit(x, valid, batch_size=4, epochs=2, shuffle=False, verbose=0,
                    class_weight=cw_valid, sample_weight=np.linspace(2.0, 0.5, 8))
result = fitted(model, history)
""",
}


def main():
    record("fit_class_weight", FIT_SETUP, SNIPPETS)


if __name__ == "__main__":
    main()
