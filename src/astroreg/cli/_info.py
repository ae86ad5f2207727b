"""``astroreg models`` and ``astroreg summary``."""

from __future__ import annotations

from astroreg.cli._common import add_command, parse_overrides


def register(sub) -> None:
    p = add_command(sub, "models", help="list the registered networks and baselines",
                    example="astroreg models")
    p.set_defaults(func=_models)
    p = add_command(sub, "summary", help="the layers of a recipe's network and its trainable parameter count",
                    example="astroreg summary recipes/galaxy-flux.yaml")
    p.add_argument("recipe", help="recipe YAML file or shipped recipe name")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key (repeatable)")
    p.set_defaults(func=_summary)


def _models(args) -> int:
    from astroreg.config import list_recipes
    from astroreg.config._recipe import BaselineKind
    from astroreg.models import get_model_entry, list_models

    print("networks (model.name in a recipe):")
    for name in list_models():
        e = get_model_entry(name)
        params = ", ".join(f"{k}={v!r}" for k, v in e.parameters().items())
        print(f"  {name:<14} [{e.input_kind}] {e.description}\n  {'':<14} params: {params or '-'}")
    print("\nbaselines (evaluation.baselines[].kind):")
    print("  " + ", ".join(BaselineKind.__args__))
    print("\nshipped recipes: " + ", ".join(list_recipes()))
    return 0


def _summary(args) -> int:
    from astroreg.config import load_recipe

    recipe = load_recipe(args.recipe, parse_overrides(args.set))  # before torch: a bad recipe answers at once
    from astroreg.modalities import recipe_input_shapes
    from astroreg.models import model_summary

    shapes = recipe_input_shapes(recipe)
    inputs = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
    print(f"recipe {recipe.name}: model {recipe.model.name}, input {inputs}, {len(recipe.targets)} output(s)")
    print(model_summary(recipe.model.name, shapes, len(recipe.targets), recipe.model.params,
                        input_kinds=recipe.input_kinds))
    return 0
