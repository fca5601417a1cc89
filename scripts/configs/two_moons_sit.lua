-- The README's main job: SiT flow matching on two moons, about a minute on
-- the CPU device. Override any field: scripts/moonflow train THIS steps=500
return {
  seed = 0,
  data = { name = "two_moons" },
  network = { hidden = 256, depth = 4 },
  -- t_shift_base = the data's dimension: no shift (4096 is for image latents)
  interface = { kind = "SiT", train_time_dist_type = "logitnormal", t_shift_base = 2 },
  optimizer = { lr = 2e-3, weight_decay = 0, warmup = 100, schedule = "cosine", clip_grad_norm = 1.0 },
  ema = { decay = 0.995 },
  steps = 3000,
  batch = 512,
  evals = {
    { sampler = "Euler", num_sampling_steps = 50, t_shift_base = 2, t_shift_cur = 2 },
  },
  eval_n = 2000,
  out = "runs/two_moons_sit",
  log_every = 100,
  checkpoint_every = 500,
}
