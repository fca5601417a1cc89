-- MeanFlow on the checkerboard: the network learns the average velocity
-- u(x_t, t, r), so one or two EulerJump steps map noise to data.
return {
  seed = 0,
  data = { name = "checkerboard" },
  network = { hidden = 256, depth = 4, use_dt = true },
  interface = { kind = "MeanFlow", train_time_dist_type = "logitnormal", t_mu = -0.4, t_sigma = 1.0,
    t_shift_base = 2, fm_portion = 0.75, norm_eps = 1e-3, norm_power = 1.0, cond_drop_ratio = 0 },
  optimizer = { lr = 2e-3, weight_decay = 0, warmup = 200, schedule = "cosine", clip_grad_norm = 1.0 },
  ema = { decay = 0.995 },
  steps = 4000,
  batch = 512,
  evals = {
    { sampler = "EulerJump", num_sampling_steps = 1, t_shift_base = 2, t_shift_cur = 2, name = "eulerjump_1step" },
    { sampler = "EulerJump", num_sampling_steps = 2, t_shift_base = 2, t_shift_cur = 2, name = "eulerjump_2steps" },
  },
  eval_n = 2000,
  out = "runs/checkerboard_meanflow",
  log_every = 100,
  checkpoint_every = 500,
}
