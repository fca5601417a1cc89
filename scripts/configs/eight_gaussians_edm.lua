-- EDM (Karras et al. 2022) on eight Gaussians: preconditioned denoiser,
-- lognormal noise levels, sampled with Heun on the EDM grid and with the
-- stochastic EDM sampler.
return {
  seed = 0,
  data = { name = "eight_gaussians" },
  network = { hidden = 256, depth = 4 },
  -- ln sigma ~ N(t_mu, t_sigma^2) as EDM's P_mean, P_std; x_sigma = sigma_data
  interface = { kind = "EDM", train_time_dist_type = "lognormal", t_mu = -1.2, t_sigma = 1.2, x_sigma = 1.5 },
  optimizer = { lr = 2e-3, weight_decay = 0, warmup = 100, schedule = "cosine", clip_grad_norm = 1.0 },
  ema = { decay = 0.995 },
  steps = 3000,
  batch = 512,
  evals = {
    { sampler = "Heun", num_sampling_steps = 32, sampling_time_dist = "exp", sigma_min = 0.002, sigma_max = 40, rho = 7,
      name = "heun_32steps" },
    { sampler = "EDM", num_sampling_steps = 32, sampling_time_dist = "exp", sigma_min = 0.002, sigma_max = 40, rho = 7,
      S_churn = 10, S_tmin = 0.01, S_tmax = 10, S_noise = 1.003, name = "edm_churn_32steps" },
  },
  eval_n = 2000,
  out = "runs/eight_gaussians_edm",
  log_every = 100,
  checkpoint_every = 500,
}
