//! The wgpu device: adapter selection (Vulkan, then GL), buffers with allocation accounting,
//! compute pipelines built once per kernel, and one dispatch helper every op goes through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

/// Threads per workgroup of every kernel (`@workgroup_size(64)`).
pub const WORKGROUP: u32 = 64;
/// Workgroups along x per dispatch; larger dispatches go on along y.
const MAX_GROUPS_X: u32 = 65535;

/// A WGSL module: its name (which, with an entry point, keys the pipeline cache) and source.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    pub name: &'static str,
    pub source: &'static str,
}

/// Device memory in use and at its peak, from the backend's own allocations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceMemory {
    pub current: u64,
    pub peak: u64,
    /// Every allocation ever made.
    pub allocated: u64,
}

/// A device buffer whose bytes count in [`DeviceMemory`] while it lives.
#[derive(Debug)]
pub struct Tracked {
    pub buf: wgpu::Buffer,
    bytes: u64,
    memory: Arc<Mutex<DeviceMemory>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut m = self.memory.lock().expect("device memory lock");
        m.current -= self.bytes;
    }
}

pub struct Device {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// Largest storage buffer one binding may see (128 MiB on llvmpipe).
    pub max_binding: u64,
    memory: Arc<Mutex<DeviceMemory>>,
    pipelines: Mutex<HashMap<(&'static str, &'static str), Arc<wgpu::ComputePipeline>>>,
}

impl Device {
    /// The first Vulkan adapter, else the first GL one; `Err` says why there is none (or that
    /// `ASSAY_NO_GPU` asks for none).
    pub fn new() -> Result<Self, String> {
        if std::env::var_os("ASSAY_NO_GPU").is_some_and(|v| !v.is_empty() && v != "0") {
            return Err("ASSAY_NO_GPU is set".into());
        }
        // GL is only probed when there is no Vulkan adapter (its EGL probing is noisy and slow).
        let adapter = [wgpu::Backends::VULKAN, wgpu::Backends::GL]
            .into_iter()
            .find_map(|backends| {
                let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
                desc.backends = backends;
                let instance = wgpu::Instance::new(desc);
                pollster::block_on(instance.enumerate_adapters(backends)).into_iter().next()
            })
            .ok_or_else(|| "no Vulkan or GL adapter (install Mesa's Vulkan driver: mesa-vulkan-drivers)".to_owned())?;
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("assay"),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| format!("the {} adapter refused a device: {e}", adapter.get_info().name))?;
        Ok(Self {
            device,
            queue,
            info: adapter.get_info(),
            max_binding: limits.max_storage_buffer_binding_size,
            memory: Arc::default(),
            pipelines: Mutex::default(),
        })
    }

    /// `llvmpipe (LLVM 15.0.6, 256 bits) · Vulkan · Mesa 22.3.6`.
    pub fn describe(&self) -> String {
        format!("{} · {:?} · {}", self.info.name, self.info.backend, self.info.driver_info)
    }

    pub fn memory(&self) -> DeviceMemory {
        *self.memory.lock().expect("device memory lock")
    }

    fn track(&self, buf: wgpu::Buffer) -> Tracked {
        let bytes = buf.size();
        let mut m = self.memory.lock().expect("device memory lock");
        m.current += bytes;
        m.allocated += bytes;
        m.peak = m.peak.max(m.current);
        Tracked { buf, bytes, memory: Arc::clone(&self.memory) }
    }

    /// A storage buffer holding `bytes` (padded to 4).
    pub fn upload(&self, bytes: &[u8]) -> Tracked {
        let mut padded;
        let contents = if bytes.len().is_multiple_of(4) && !bytes.is_empty() {
            bytes
        } else {
            padded = bytes.to_vec();
            padded.resize(bytes.len().next_multiple_of(4).max(4), 0);
            &padded
        };
        let buf = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        });
        self.track(buf)
    }

    /// A zeroed storage buffer of `n` f32.
    pub fn zeros(&self, n: usize) -> Tracked {
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: (n.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.track(buf)
    }

    /// The first `n` f32 of `buf`.
    pub fn download(&self, buf: &wgpu::Buffer, n: usize) -> Vec<f32> {
        if n == 0 {
            return Vec::new();
        }
        let size = (n * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("download"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        enc.copy_buffer_to_buffer(buf, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let slice = staging.slice(..);
        slice.map_async(wgpu::MapMode::Read, |r| r.expect("mapping a staging buffer"));
        self.device.poll(wgpu::PollType::wait_indefinitely()).expect("device lost");
        let data = {
            let view = slice.get_mapped_range().expect("a mapped staging buffer");
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        data
    }

    /// Copies `n` f32 from `src[src_at..]` to `dst[dst_at..]`.
    pub fn copy(&self, src: &wgpu::Buffer, src_at: usize, dst: &wgpu::Buffer, dst_at: usize, n: usize) {
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        enc.copy_buffer_to_buffer(src, (src_at * 4) as u64, dst, (dst_at * 4) as u64, (n * 4) as u64);
        self.queue.submit([enc.finish()]);
    }

    /// Runs entry point `entry` of `kernel` over `n` invocations (linear index from the
    /// prelude's `linear_id`). Binding 0 is `params`; `buffers` are (binding, buffer).
    pub fn dispatch(
        &self,
        kernel: Kernel,
        entry: &'static str,
        params: &[u32],
        buffers: &[(u32, &wgpu::Buffer)],
        n: u32,
    ) {
        let pipeline = self.pipeline(kernel, entry);
        let params = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::cast_slice(if params.is_empty() { &[0u32] } else { params }),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let entries: Vec<wgpu::BindGroupEntry> = std::iter::once((0, &params))
            .chain(buffers.iter().copied())
            .map(|(binding, b)| wgpu::BindGroupEntry { binding, resource: b.as_entire_binding() })
            .collect();
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let groups = n.div_ceil(WORKGROUP).max(1);
        let (x, y) = if groups <= MAX_GROUPS_X { (groups, 1) } else { (MAX_GROUPS_X, groups.div_ceil(MAX_GROUPS_X)) };
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &group, &[]);
            pass.dispatch_workgroups(x, y, 1);
        }
        self.queue.submit([enc.finish()]);
    }

    fn pipeline(&self, kernel: Kernel, entry: &'static str) -> Arc<wgpu::ComputePipeline> {
        let key = (kernel.name, entry);
        let mut cache = self.pipelines.lock().expect("pipeline cache lock");
        if let Some(p) = cache.get(&key) {
            return Arc::clone(p);
        }
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(kernel.name),
            source: wgpu::ShaderSource::Wgsl(kernel.source.into()),
        });
        let p = Arc::new(self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        }));
        cache.insert(key, Arc::clone(&p));
        p
    }
}
