-- REPA on two moons: SiT plus an alignment loss between the network's hidden
-- state at depth 2 (projected by a small MLP) and a fixed nonlinear feature
-- map of the clean sample (sines, cosines and products of x; train.lua's
-- repa_features), standing in for a frozen encoder.
return {
  seed = 0,
  data = { name = "two_moons" },
  network = { hidden = 256, depth = 4 },
  interface = { kind = "SiT", train_time_dist_type = "logitnormal", t_shift_base = 2 },
  repa = { feature_dim = 16, repa_depth = 2, proj_dim = 128, repa_loss_weight = 0.5 },
  optimizer = { lr = 2e-3, weight_decay = 0, warmup = 100, schedule = "cosine", clip_grad_norm = 1.0 },
  ema = { decay = 0.995 },
  steps = 3000,
  batch = 512,
  evals = {
    { sampler = "Euler", num_sampling_steps = 50, t_shift_base = 2, t_shift_cur = 2 },
  },
  eval_n = 2000,
  out = "runs/two_moons_repa",
  log_every = 100,
  checkpoint_every = 500,
}
