"""toy2024's documented choices (all of them: it is an example)."""


def choices_markdown(config: dict, facts: dict) -> str:
    section = config["toy2024"]
    return (f"### toy2024\n\n- Prefix sums of {section['data']['train_bits']} bits, a weight-tied cell of width "
            f"{section['model']['width']}, {len(section['seeds'])} seeds; every value is the example's choice.")
