"""Forced decoding for rewarder tests: make a real model write a chosen completion through the real generate path."""


def forcing(tokenizer, completion_for_prompt):
    """A prefix_allowed_tokens_fn that makes the model write `completion_for_prompt(prompt)` and stop.

    The completion depends on each row's own prompt, so a wrong pairing of prompts and results would show.
    """
    start_ids = tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def allowed(batch_id, input_ids):
        ids = input_ids.tolist()
        begin = max(i for i in range(len(ids) - len(start_ids) + 1) if ids[i:i + len(start_ids)] == start_ids)
        prompt_end = begin + len(start_ids)
        target = tokenizer.encode(completion_for_prompt(tokenizer.decode(ids[:prompt_end])),
                                  add_special_tokens=False) + [eos]
        done = len(ids) - prompt_end
        return [target[done]] if done < len(target) else [eos]

    return allowed
