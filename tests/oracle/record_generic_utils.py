"""Oracle cases for custom-object scopes, (de)serialization, the small generic helpers
and the names every legacy module path offers."""

from __future__ import annotations

import _oracle
import _shim

AREA = "generic_utils"


def my_fn(x):
    return x


def other_fn(x):
    return x


class Plain:
    """A class with get_config/from_config that records what from_config saw."""

    def __init__(self, factor=1.0, fn=None):
        self.factor = factor
        self.fn = fn

    def get_config(self):
        return {"factor": self.factor}

    @classmethod
    def from_config(cls, config):
        registry = _shim.utils.get_custom_objects()
        seen = {
            "my_fn_visible": "my_fn" in registry,
            "config": {
                k: (v if isinstance(v, (int, float, str)) else type(v).__name__)
                for k, v in config.items()
            },
        }
        instance = cls(**config)
        instance.seen = seen
        return instance


class WithCustomObjectsArg(Plain):
    @classmethod
    def from_config(cls, config, custom_objects=None):
        instance = cls(**config)
        instance.seen = sorted(k for k in (custom_objects or {}) if k in ("my_fn", "Plain"))
        return instance


class NoFromConfig:
    def __init__(self, a=0):
        self.a = a


def _scope_cases():
    u = _shim.utils
    G = u.get_custom_objects

    def inside(*args):
        with u.CustomObjectScope(*args):
            return sorted(k for k in G() if k in ("my_fn", "other_fn", "x", "ab"))

    yield "scope/one-dict", lambda: inside({"my_fn": my_fn})
    yield "scope/two-dicts", lambda: inside({"my_fn": my_fn}, {"other_fn": other_fn})
    yield "scope/override", lambda: _override()
    yield "scope/pairs", lambda: inside([("my_fn", my_fn)])
    yield "scope/string-pairs", lambda: inside(["ab"])
    yield "scope/none", lambda: inside(None)
    yield "scope/int", lambda: inside(5)
    yield "scope/string", lambda: inside("name")
    yield "scope/empty", lambda: inside()
    yield "scope/after-exit", lambda: _after_exit()
    yield "scope/nested", lambda: _nested()
    yield "scope/function-form", lambda: _function_form()
    yield "scope/enter-returns-scope", lambda: _enter_returns()
    yield "scope/get-custom-objects-same-dict", lambda: G() is G()
    yield "scope/register-by-hand", lambda: _by_hand()
    yield "scope/exception-inside", lambda: _exception_inside()


def _override():
    u = _shim.utils
    with u.CustomObjectScope({"x": my_fn}, {"x": other_fn}):
        return u.get_custom_objects()["x"].__name__


def _after_exit():
    u = _shim.utils
    with u.CustomObjectScope({"my_fn": my_fn}):
        pass
    return "my_fn" in u.get_custom_objects()


def _nested():
    u = _shim.utils
    with u.CustomObjectScope({"my_fn": my_fn}):
        with u.custom_object_scope({"other_fn": other_fn}):
            inner = sorted(k for k in u.get_custom_objects() if k.endswith("_fn"))
        outer = sorted(k for k in u.get_custom_objects() if k.endswith("_fn"))
    return [inner, outer]


def _function_form():
    u = _shim.utils
    scope = u.custom_object_scope({"my_fn": my_fn})
    return type(scope).__name__


def _enter_returns():
    u = _shim.utils
    scope = u.CustomObjectScope({"my_fn": my_fn})
    with scope as entered:
        return entered is scope


def _by_hand():
    u = _shim.utils
    u.get_custom_objects()["by_hand_fn"] = my_fn
    try:
        return u.deserialize_keras_object("by_hand_fn") is my_fn
    finally:
        del u.get_custom_objects()["by_hand_fn"]


def _exception_inside():
    u = _shim.utils
    try:
        with u.CustomObjectScope({"my_fn": my_fn}):
            raise KeyError("inside")
    except KeyError:
        pass
    return "my_fn" in u.get_custom_objects()


def _serialization_cases():
    u = _shim.utils
    S, D = u.serialize_keras_object, u.deserialize_keras_object
    yield "serialize/none", lambda: S(None)
    yield "serialize/function", lambda: S(my_fn)
    yield "serialize/class", lambda: S(NoFromConfig)
    yield "serialize/get-config", lambda: S(Plain(2.5))
    yield "serialize/no-name", lambda: S(object())
    yield "deserialize/none", lambda: D(None)
    yield "deserialize/custom-name", lambda: D("my_fn", custom_objects={"my_fn": my_fn}).__name__
    yield "deserialize/module-name", lambda: D("my_fn", module_objects={"my_fn": my_fn}).__name__
    yield "deserialize/custom-beats-module", lambda: D("f", {"f": my_fn}, {"f": other_fn}).__name__
    yield "deserialize/unknown-name", lambda: D("nope", module_objects={})
    yield (
        "deserialize/class-name-not-called",
        lambda: D("Plain", custom_objects={"Plain": Plain}) is Plain,
    )
    yield from _deserialize_dict_cases()
    yield "deserialize/int", lambda: D(5)
    yield (
        "deserialize/roundtrip",
        lambda: vars_of(D(S(Plain(7.0)), custom_objects={"Plain": Plain})),
    )


def _deserialize_dict_cases():
    u = _shim.utils
    D = u.deserialize_keras_object
    yield (
        "deserialize/dict",
        lambda: vars_of(
            D({"class_name": "Plain", "config": {"factor": 3.0}}, custom_objects={"Plain": Plain})
        ),
    )
    yield (
        "deserialize/dict-sees-custom-objects",
        lambda: (
            D(
                {"class_name": "Plain", "config": {"factor": 1.0}},
                custom_objects={"Plain": Plain, "my_fn": my_fn},
            ).seen
        ),
    )
    yield (
        "deserialize/dict-string-stays-string",
        lambda: (
            D(
                {"class_name": "Plain", "config": {"factor": 1.0, "fn": "my_fn"}},
                custom_objects={"Plain": Plain, "my_fn": my_fn},
            ).seen
        ),
    )
    yield (
        "deserialize/dict-custom-objects-arg",
        lambda: (
            D(
                {"class_name": "WithCustomObjectsArg", "config": {"factor": 1.0}},
                custom_objects={"WithCustomObjectsArg": WithCustomObjectsArg, "my_fn": my_fn},
            ).seen
        ),
    )
    yield (
        "deserialize/dict-module-objects",
        lambda: vars_of(D({"class_name": "Plain", "config": {}}, module_objects={"Plain": Plain})),
    )
    yield (
        "deserialize/dict-no-from-config",
        lambda: D({"class_name": "N", "config": {"a": 4}}, custom_objects={"N": NoFromConfig}).a,
    )
    yield "deserialize/dict-unknown", lambda: D({"class_name": "Nope", "config": {}})
    yield "deserialize/dict-missing-config", lambda: D({"class_name": "Plain"})
    yield "deserialize/dict-in-scope", lambda: _dict_in_scope()


def vars_of(obj):
    return {k: v for k, v in vars(obj).items() if k in ("factor", "a", "fn")}


def _dict_in_scope():
    u = _shim.utils
    with u.CustomObjectScope({"Plain": Plain}):
        return vars_of(
            u.deserialize_keras_object({"class_name": "Plain", "config": {"factor": 9.0}})
        )


def _helpers():
    g = _shim.legacy("generic_utils")
    yield "generic/to_list-list", lambda: g.to_list([1, 2])
    yield "generic/to_list-scalar", lambda: g.to_list(3)
    yield "generic/to_list-tuple", lambda: g.to_list((1, 2))
    yield "generic/to_list-tuple-allowed", lambda: g.to_list((1, 2), allow_tuple=True)
    yield "generic/unpack_singleton-one", lambda: g.unpack_singleton([5])
    yield "generic/unpack_singleton-two", lambda: g.unpack_singleton([5, 6])
    yield "generic/unpack_singleton-scalar", lambda: g.unpack_singleton(5)
    yield "generic/has_arg-yes", lambda: g.has_arg(Plain.__init__, "factor")
    yield "generic/has_arg-no", lambda: g.has_arg(my_fn, "y")
    yield "generic/has_arg-kwargs", lambda: g.has_arg(lambda **kw: 0, "y")
    yield "generic/has_arg-kwargs-accept", lambda: g.has_arg(lambda **kw: 0, "y", accept_all=True)
    yield "generic/func_dump-load", lambda: g.func_load(*g.func_dump(lambda x: x * 3))(4)
    yield "generic/func_dump-defaults", lambda: g.func_load(*g.func_dump(lambda x, k=2: x * k))(4)
    yield (
        "generic/is_all_none",
        lambda: [g.is_all_none(None), g.is_all_none([None, None]), g.is_all_none([None, 1])],
    )
    yield "generic/getargspec", lambda: list(g.getargspec(lambda a, b=1, *c, **d: 0)[:3])
    yield "generic/object_list_uid", lambda: g.object_list_uid([]) == ""
    yield (
        "generic/slice_arrays",
        lambda: g.slice_arrays([[1, 2, 3]], 0, 2) if False else g.slice_arrays(None),
    )
    yield "generic/transpose_shape", lambda: g.transpose_shape((1, 2, 3), "channels_first", [1, 2])
    yield (
        "generic/check_for_unexpected_keys",
        lambda: g.check_for_unexpected_keys("n", {"a": 1}, ["a"]),
    )


# Every public function and class the Keras 2.3.1 legacy modules defined (import-time
# names such as `np` or `six` excluded).
LEGACY_NAMES = {
    "np_utils": ["to_categorical", "normalize"],
    "generic_utils": [
        "CustomObjectScope", "custom_object_scope", "get_custom_objects",
        "serialize_keras_object", "deserialize_keras_object", "func_dump", "func_load",
        "getargspec", "has_arg", "Progbar", "to_list", "unpack_singleton",
        "object_list_uid", "is_all_none", "slice_arrays", "transpose_shape",
        "check_for_unexpected_keys",
    ],
    "data_utils": [
        "get_file", "validate_file", "Sequence", "SequenceEnqueuer", "OrderedEnqueuer",
        "GeneratorEnqueuer", "iter_sequence_infinite", "urlretrieve", "init_pool",
        "get_index", "init_pool_generator", "next_sample",
    ],
    "io_utils": [
        "HDF5Matrix", "ask_to_proceed_with_overwrite", "H5Dict", "h5dict",
        "load_from_binary_h5py", "save_to_binary_h5py",
    ],
    "layer_utils": [
        "count_params", "print_summary", "convert_all_kernels_in_model",
        "convert_dense_weights_data_format", "get_source_inputs",
    ],
    "vis_utils": ["model_to_dot", "plot_model", "is_model", "is_wrapped_model", "add_edge"],
    "multi_gpu_utils": ["multi_gpu_model"],
    "training_utils": ["multi_gpu_model"],
}  # fmt: skip


def _legacy_names():
    for module, names in LEGACY_NAMES.items():
        for name in names:
            yield (
                f"legacy/{module}/{name}",
                lambda m=module, n=name: hasattr(_shim.legacy(m), n),
            )
    top = [
        "HDF5Matrix", "get_file", "Sequence", "GeneratorEnqueuer", "OrderedEnqueuer",
        "CustomObjectScope", "custom_object_scope", "get_custom_objects",
        "serialize_keras_object", "deserialize_keras_object", "Progbar",
        "convert_all_kernels_in_model", "get_source_inputs", "print_summary",
        "model_to_dot", "plot_model", "to_categorical", "normalize", "multi_gpu_model",
        "H5Dict",
    ]  # fmt: skip
    for name in top:
        yield "legacy/top/" + name, lambda n=name: hasattr(_shim.utils, n)


def cases():
    yield from _scope_cases()
    yield from _serialization_cases()
    yield from _helpers()
    yield from _legacy_names()


_oracle.main(__name__, AREA, cases)
