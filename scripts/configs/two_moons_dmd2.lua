-- DMD2 distillation of the two_moons_sit teacher (its EMA weights) into a
-- 1-step student (and a 4-step one: set student_t_list = {1.0, 0.75, 0.5, 0.25}).
-- The teacher is trained first when its checkpoint is missing. Student and
-- fake score start as copies of the teacher. scripts/moonflow train THIS
return {
  seed = 0,
  distill = {
    teacher = "runs/two_moons_sit/checkpoint.safetensors",
    teacher_config = "scripts/configs/two_moons_sit.lua",
    student = { init = "teacher" },
    fake = { init = "teacher" },
    student_t_list = { 1.0, 0.75, 0.5, 0.25 },
    sample_t_cfg = { time_dist_type = "uniform", min_t = 0.02, max_t = 0.98 },
    fake_score_updates = 5,
    gan_loss_weight = 0,
    student_optimizer = { lr = 1e-4, betas = { 0.9, 0.999 } },
    fake_optimizer = { lr = 1e-3, betas = { 0.9, 0.999 } },
  },
  ema = { decay = 0.99 },
  steps = 1000,
  batch = 256,
  eval_n = 2000,
  out = "runs/two_moons_dmd2",
  log_every = 50,
  checkpoint_every = 250,
}
